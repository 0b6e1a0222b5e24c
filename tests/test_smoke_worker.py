import pytest

from worker.tasks.health import count_users


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_reads_the_test_database(celery_worker_process, django_user_model):
    django_user_model.objects.create_user(username="a")
    django_user_model.objects.create_user(username="b")
    assert count_users.delay().get(timeout=30) == 2
