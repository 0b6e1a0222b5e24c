"""Celery tasks: thin, idempotent wrappers that re-read rows, claim work and call services.

Each feature keeps its tasks in its own module here; every module is imported so the worker
registers them all. GPU tasks are named ``gpu.<feature>.<action>`` and are routed to the ``gpu`` queue.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
