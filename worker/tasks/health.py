"""A trivial task used to check the whole enqueue → worker → database path."""

from celery import shared_task
from django.contrib.auth import get_user_model


@shared_task(name="default.health.count_users")
def count_users() -> int:
    """Return how many users the worker sees in its database."""
    return get_user_model().objects.count()
