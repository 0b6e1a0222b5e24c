"""The user admin with an "approve" action for accounts that signed up while ``HPBENCH_SIGNUP=approval``."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from hpbench.accounts.services import accounts_approve

User = get_user_model()


class ResearcherUserAdmin(UserAdmin):
    list_display = ["username", "email", "is_active", "is_staff", "date_joined", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    ordering = ["-date_joined"]
    actions = ["approve"]

    @admin.action(description="Approve the selected accounts (activate them)")
    def approve(self, request, queryset) -> None:
        count = accounts_approve(users=queryset)
        self.message_user(request, f"{count} account(s) approved.", messages.SUCCESS)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ResearcherUserAdmin)
