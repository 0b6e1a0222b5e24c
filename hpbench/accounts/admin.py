"""The user admin with an "approve" action for accounts that signed up while ``HPBENCH_SIGNUP=approval``."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from hpbench.accounts.selectors import accounts_pending
from hpbench.accounts.services import accounts_approve

User = get_user_model()


class AwaitingApprovalFilter(admin.SimpleListFilter):
    title = "awaiting approval"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("yes", "Awaiting approval")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=accounts_pending().values("pk"))
        return queryset


class ResearcherUserAdmin(UserAdmin):
    list_display = ["username", "email", "is_active", "is_staff", "date_joined", "last_login"]
    list_filter = [AwaitingApprovalFilter, "is_active", "is_staff", "is_superuser", "groups"]
    ordering = ["-date_joined"]
    actions = ["approve"]

    @admin.action(description="Approve the selected accounts (activate them)")
    def approve(self, request, queryset) -> None:
        count = accounts_approve(users=queryset)
        self.message_user(request, f"{count} account(s) approved.", messages.SUCCESS)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ResearcherUserAdmin)
