"""An account waiting for staff approval: its holder is told so at login (not "didn't match", and not counted as a
failed login); nobody without the password learns it exists; staff see and approve pending accounts on a page."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "pending-pass-123"
WAITS = "awaits approval"


@pytest.fixture
def pending(django_user_model):
    return django_user_model.objects.create_user(username="newbie", email="n@example.org", password=PASSWORD,
                                                 is_active=False)


def _login(username: str, password: str, ip: str = "203.0.113.20"):
    return Client().post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_the_holder_of_the_password_is_told_the_account_awaits_approval(pending, settings):
    answer = _login("newbie", PASSWORD)
    assert answer.status_code == 200 and WAITS in answer.content.decode()
    assert "didn&#x27;t match" not in answer.content.decode()
    # Not a failed login: as many tries as the lockout allows, and more, still get the message.
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        assert WAITS in _login("newbie", PASSWORD).content.decode()


def test_a_wrong_password_reveals_nothing_and_counts_towards_the_lockout(pending, settings):
    wrong = _login("newbie", "guess").content.decode()
    missing = _login("nobody-here", "guess").content.decode()
    assert WAITS not in wrong and "didn&#x27;t match" in wrong
    def alerts(page: str) -> list[str]:
        return [line for line in page.splitlines() if 'role="alert"' in line]

    assert alerts(wrong) == alerts(missing) != []
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login("newbie", "guess")
    # Locked out: even the right password gets the lockout, not the message.
    assert _login("newbie", PASSWORD).status_code == 429


def test_an_account_deactivated_after_use_is_not_pending(pending):
    from django.utils import timezone

    type(pending).objects.filter(pk=pending.pk).update(last_login=timezone.now())
    assert WAITS not in _login("newbie", PASSWORD).content.decode()


def test_staff_see_pending_accounts_and_approve_them(pending, staff_user, researcher, django_user_model):
    other = django_user_model.objects.create_user(username="second", password=PASSWORD, is_active=False)
    assert Client().get("/accounts/pending/").status_code == 302  # anonymous: to the login page
    as_researcher = Client()
    as_researcher.force_login(researcher)
    assert as_researcher.get("/accounts/pending/").status_code == 403
    assert as_researcher.post("/accounts/pending/", {"all": "1"}).status_code == 403

    staff = Client()
    staff.force_login(staff_user)
    page = staff.get("/accounts/pending/").content.decode()
    assert 'data-account="newbie"' in page and 'data-account="second"' in page
    assert 'data-account="researcher"' not in page
    answer = staff.post("/accounts/pending/", {"user": [str(pending.pk), "x1"]}, follow=True)
    assert "1 account approved" in answer.content.decode()
    pending.refresh_from_db()
    other.refresh_from_db()
    assert pending.is_active and not other.is_active
    assert _login("newbie", PASSWORD).status_code == 302  # logs in now
    assert "awaiting=yes" in staff.get("/admin/auth/user/").content.decode()  # the admin's filter
    assert "second" in staff.get("/admin/auth/user/?awaiting=yes").content.decode()
