"""WSGI entry point (gunicorn hpbench.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")
application = get_wsgi_application()
