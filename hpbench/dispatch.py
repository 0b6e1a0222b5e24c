"""The one way the web process (and the commands) start a Celery task: by name, once the transaction commits.

Tasks are sent by name through :mod:`hpbench.celery`'s app rather than by calling ``.delay`` on the imported
task function: the web process then never imports ``worker`` (whose services need torch, numpy files and the
model zoo), the dependency points one way (worker → apps, never apps → worker), and the routes by name
(``gpu.*`` → the ``gpu`` queue, settings ``CELERY_TASK_ROUTES``) apply as for any message.
Every name sent here is checked against the tasks the worker registers (``tests/hpbench/test_dispatch.py``).
"""

from __future__ import annotations

from django.db import transaction

#: The task names the apps dispatch (the worker defines them in ``worker/tasks/<feature>.py``).
CAMPAIGN_BUILD = "default.campaigns.build"
EXPORT_RUN = "default.exports.run"
RETRIEVAL_RUN = "gpu.retrieval.run"
SCORE_MODEL = "gpu.scoring.score_model"
SCOREFILE_CHECK = "default.scorefiles.check"
PREFERENCE_TRAIN = "gpu.preference.train"
SCOREFILE_RANKINGS = "default.scorefiles.rankings"
SCOREFILE_SCORE = "default.scorefiles.score"
TRAIN_MODEL = "gpu.training.train_model"

TASK_NAMES = (
    CAMPAIGN_BUILD, EXPORT_RUN, RETRIEVAL_RUN, SCORE_MODEL, SCOREFILE_CHECK, SCOREFILE_RANKINGS, SCOREFILE_SCORE,
    TRAIN_MODEL, PREFERENCE_TRAIN,
)


def task_send_on_commit(name: str, *args: object) -> None:
    """Send task ``name`` with positional ``args`` (plain JSON values: primary keys) once the current
    transaction commits; at once when no transaction is open. Nothing is sent if the transaction rolls back.

    Raises ``ValueError`` for a name not in :data:`TASK_NAMES`. A broker outage raises at send time (after
    the commit): it is never hidden by running the task inline.
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}: expected one of {', '.join(TASK_NAMES)}")
    payload = list(args)

    def send() -> None:
        from hpbench.celery import app

        app.send_task(name, args=payload)

    transaction.on_commit(send)
