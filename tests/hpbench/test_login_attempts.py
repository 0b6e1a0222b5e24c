"""Login attempts are rate-limited (django-axes): a username from one address is locked out after repeated
failures, on the admin's login page and on /accounts/login/ alike."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "staff-pass-123"


def _login(path: str, username: str, password: str, ip: str):
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_repeated_failures_lock_the_username_out_from_that_address(path, staff_user, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _login(path, "staff", "wrong", "203.0.113.5").status_code == 200  # the form again, with its error
    assert _login(path, "staff", "wrong", "203.0.113.5").status_code == 429
    # Locked out: even the right password is refused from that address ...
    assert _login(path, "staff", PASSWORD, "203.0.113.5").status_code == 429
    # ... while the user still logs in from elsewhere, and other usernames from that address are not locked.
    assert _login(path, "staff", PASSWORD, "198.51.100.7").status_code == 302
    assert _login(path, "nobody", "wrong", "203.0.113.5").status_code == 200


def test_a_successful_login_resets_the_failures(staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login("/accounts/login/", "staff", "wrong", "203.0.113.9")
    assert _login("/accounts/login/", "staff", PASSWORD, "203.0.113.9").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login("/accounts/login/", "staff", "wrong", "203.0.113.9").status_code == 200


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(staff_user, settings):
    settings.HPBENCH_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.HPBENCH_TRUSTED_PROXIES = ["10.0.0.0/24"]
    for n in range(settings.AXES_FAILURE_LIMIT):
        # The client writes its own X-Forwarded-For entries; the proxy appends the address it came from.
        response = Client().post("/accounts/login/", {"username": "staff", "password": "wrong"},
                                 REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 203.0.113.5")
    assert response.status_code == 429
    # Another client behind the same proxy is not locked out.
    other = Client().post("/accounts/login/", {"username": "staff", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2",
                          HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert other.status_code == 302


def test_a_client_reaching_the_server_directly_cannot_forge_its_address(staff_user, settings):
    settings.HPBENCH_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.HPBENCH_TRUSTED_PROXIES = ["10.0.0.2"]
    statuses = [
        Client().post("/accounts/login/", {"username": "staff", "password": "wrong"}, REMOTE_ADDR="203.0.113.77",
                      HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(12)
    ]
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [200] * (limit - 1) and set(statuses[limit - 1:]) == {429}


def test_the_header_without_trusted_proxies_stops_start_up():
    import subprocess
    import sys

    env = {"HPBENCH_CLIENT_IP_HEADER": "X-Forwarded-For", "DJANGO_SETTINGS_MODULE": "hpbench.settings",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "HPBENCH_TRUSTED_PROXIES" in done.stderr
