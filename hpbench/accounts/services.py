"""Researchers' accounts: self-service sign-up behind the ``HPBENCH_SIGNUP`` switch, staff approval, API tokens.

``HPBENCH_SIGNUP``: ``off`` (no sign-up page; staff create accounts in the admin), ``approval`` (new accounts are
inactive, so they cannot log in or use a token, until a staff member approves them in the admin), ``open``
(active at once). Web-safe: no torch.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

SIGNUP_MODES = ("off", "approval", "open")


class SignupError(ValueError):
    """Sign-up is refused; the message names the field (or says sign-up is off)."""


def signup_mode() -> str:
    """The configured ``HPBENCH_SIGNUP`` mode (one of :data:`SIGNUP_MODES`)."""
    return getattr(settings, "HPBENCH_SIGNUP", "approval")


@transaction.atomic
def account_signup(*, username: str, email: str, password: str) -> User | None:
    """Create an account as ``HPBENCH_SIGNUP`` says: active when ``open``, inactive until approved when
    ``approval``. The caller has validated the username and password (Django's validators).

    Sign-up never tells whether an e-mail address has an account (addresses need not be unique). With
    ``approval`` it does not tell whether a username is taken either: it returns ``None``, creating nothing, and
    the caller answers as for a new account (the password is hashed all the same, so the answer takes as
    long). Raises :class:`SignupError` when sign-up is ``off``, or, with ``open`` (which logs the new account
    in at once, so cannot hide it), when the username is taken.
    """
    mode = signup_mode()
    if mode == "off":
        raise SignupError("sign-up is closed on this server; ask its staff for an account")
    users = get_user_model().objects
    if users.filter(username__iexact=username).exists():
        if mode == "open":
            raise SignupError(f"username: {username!r} is taken")
        make_password(password)
        return None
    return users.create_user(username=username, email=email, password=password, is_active=(mode == "open"))


def accounts_approve(*, users: Iterable[User]) -> int:
    """Staff: activate accounts waiting for approval; returns how many were activated."""
    ids = [user.pk for user in users]
    return get_user_model().objects.filter(pk__in=ids, is_active=False).update(is_active=True)


def token_for_user(*, user: User) -> Token | None:
    """The user's API token, or ``None`` when they have not created one."""
    return Token.objects.filter(user=user).first()


@transaction.atomic
def token_rotate(*, user: User) -> Token:
    """Create the user's API token, or replace it: the old key stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
