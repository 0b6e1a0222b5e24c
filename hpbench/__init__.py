"""hpbench: human-preference benchmarking for composed image retrieval."""

from hpbench.celery import app as celery_app

__all__ = ["celery_app"]
