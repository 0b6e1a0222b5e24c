"""Reads of accounts: who waits for staff approval."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet


def accounts_pending() -> QuerySet[User]:
    """Accounts waiting for approval (inactive and never logged in: sign-ups under ``HPBENCH_SIGNUP=approval``),
    oldest first. Accounts that staff deactivated after use are not pending."""
    return get_user_model().objects.filter(is_active=False, last_login__isnull=True).order_by("date_joined")


def account_awaits_approval(*, username: str, password: str) -> bool:
    """Whether ``username`` names an account waiting for approval whose password is ``password``: only the holder
    of the password learns that the account exists and waits."""
    user = accounts_pending().filter(username=username).first()
    return user is not None and user.check_password(password)
