"""The login form: a person whose account waits for staff approval is told so, and only that person."""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.contrib.auth.forms import AuthenticationForm

from hpbench.accounts.selectors import account_awaits_approval


class LoginForm(AuthenticationForm):
    """Django's login form, plus: the right password of an account that waits for approval gets "awaits approval"
    instead of "didn't match", and is not counted as a failed login (django-axes). A wrong password, or any
    password while the address is locked out, goes through the usual path, so the message tells nothing to
    someone who does not hold the password."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password didn't match. Please try again.",
        "awaiting_approval": "Your account awaits approval by this server's staff: you can log in once they "
                             "approve it (they have been shown your request).",
    }

    def clean(self) -> dict[str, Any]:
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if (
            username and password
            and AxesProxyHandler.is_allowed(self.request, {"username": username})
            and account_awaits_approval(username=username, password=password)
        ):
            raise forms.ValidationError(self.error_messages["awaiting_approval"], code="awaiting_approval")
        return super().clean()
