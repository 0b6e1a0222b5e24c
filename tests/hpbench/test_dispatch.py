"""Dispatching tasks (hpbench/dispatch.py): by name, after commit, only names the worker registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.db import transaction

from hpbench import dispatch
from hpbench.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_every_name_the_apps_send_is_a_task_the_worker_registers():
    app.loader.import_default_modules()  # what a worker does at start-up: imports worker.tasks
    missing = [name for name in dispatch.TASK_NAMES if name not in app.tasks]
    assert missing == []


def test_gpu_tasks_are_routed_to_the_gpu_queue_by_name_alone():
    routes = {name: app.amqp.router.route({}, name)["queue"].name for name in dispatch.TASK_NAMES}
    assert routes == {
        "default.campaigns.build": "default",
        "default.exports.run": "default",
        "gpu.retrieval.run": "gpu",
        "gpu.scoring.score_model": "gpu",
        "default.scorefiles.check": "default",
        "default.scorefiles.rankings": "default",
        "default.scorefiles.score": "default",
        "gpu.training.train_model": "gpu",
        "gpu.preference.train": "gpu",
    }


@pytest.mark.django_db
def test_a_task_is_sent_only_when_the_transaction_commits(django_capture_on_commit_callbacks):
    with mock.patch.object(app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            dispatch.task_send_on_commit(dispatch.SCORE_MODEL, 7)
            assert send.call_count == 0
        assert len(callbacks) == 1
    send.assert_called_once_with("gpu.scoring.score_model", args=[7])


@pytest.mark.django_db
def test_nothing_is_sent_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    with mock.patch.object(app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError), transaction.atomic():
                dispatch.task_send_on_commit(dispatch.EXPORT_RUN, 3)
                raise RuntimeError("roll back")
        assert callbacks == []
    send.assert_not_called()


def test_an_unknown_task_name_is_refused_at_once():
    with pytest.raises(ValueError, match="unknown task 'gpu.scoring.scoremodel'"):
        dispatch.task_send_on_commit("gpu.scoring.scoremodel", 1)


def test_the_web_process_and_the_services_never_import_the_worker_package(tmp_path):
    code = (
        "import sys; from hpbench.wsgi import application; from django.urls import get_resolver; "
        "get_resolver().url_patterns; from django.contrib import admin; admin.autodiscover(); "
        "import importlib, pkgutil, annotate.services, hpbench.catalog.services, hpbench.exports.services, "
        "hpbench.leaderboard.services; "
        "[importlib.import_module(m.name) for p in (annotate.services, hpbench.leaderboard.services) "
        "for m in pkgutil.iter_modules(p.__path__, p.__name__ + '.')]; "
        "print(sorted(m for m in sys.modules if m == 'worker' or m.startswith('worker.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "HPBENCH_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
