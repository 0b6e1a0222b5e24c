"""Sign-up behind HPBENCH_SIGNUP, staff approval and API tokens (services)."""

import pytest
from django.test import override_settings

from hpbench.accounts import services


@override_settings(HPBENCH_SIGNUP="off")
def test_sign_up_is_refused_when_it_is_off(db):
    with pytest.raises(services.SignupError, match="closed"):
        services.account_signup(username="ada", email="ada@example.org", password="a-long-pass-123")


@override_settings(HPBENCH_SIGNUP="approval")
def test_an_account_waits_inactive_until_staff_approve_it(db, django_user_model):
    user = services.account_signup(username="ada", email="ada@example.org", password="a-long-pass-123")
    assert not user.is_active and user.check_password("a-long-pass-123")
    assert services.accounts_approve(users=[user]) == 1
    user.refresh_from_db()
    assert user.is_active
    assert services.accounts_approve(users=[user]) == 0  # already active


@override_settings(HPBENCH_SIGNUP="open")
def test_an_open_sign_up_is_active_at_once_and_names_a_taken_username_only(db, django_user_model):
    assert services.account_signup(username="ada", email="ada@example.org", password="a-long-pass-123").is_active
    with pytest.raises(services.SignupError, match="^username: 'ADA' is taken"):
        services.account_signup(username="ADA", email="other@example.org", password="a-long-pass-123")
    # An address in use is not told: the account is created as any other.
    assert services.account_signup(username="bob", email="Ada@Example.org", password="a-long-pass-123").is_active


@override_settings(HPBENCH_SIGNUP="approval")
def test_with_approval_a_taken_username_creates_nothing_and_is_not_told(db, django_user_model):
    first = services.account_signup(username="ada", email="ada@example.org", password="a-long-pass-123")
    assert first is not None
    assert services.account_signup(username="ADA", email="x@example.org", password="a-long-pass-123") is None
    assert django_user_model.objects.count() == 1


def test_rotating_a_token_replaces_the_old_key(researcher):
    assert services.token_for_user(user=researcher) is None
    first = services.token_rotate(user=researcher)
    second = services.token_rotate(user=researcher)
    assert first.key != second.key
    assert services.token_for_user(user=researcher).key == second.key
