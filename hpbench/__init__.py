"""hpbench: human-preference benchmarking for composed image retrieval.

The package imports nothing: ``hpbench.metrics`` must load without Django or Celery (the model zoo's trainer
uses it). The Celery app lives in :mod:`hpbench.celery` (``celery -A hpbench.celery worker``); the web process
reaches it through :mod:`hpbench.dispatch`.
"""
