"""WSGI entry point (gunicorn hpbench.wsgi): Django, with the annotators' hot path on a short middleware stack."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")
django.setup(set_prefix=False)

from hpbench.handlers import Application  # noqa: E402  (needs the settings)

application = Application()
