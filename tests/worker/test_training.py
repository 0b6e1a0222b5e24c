"""The training folder's lock (worker/training.py): taken over from a dead process, never from a live one."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from worker.training import LOCK_NAME, model_train

pytestmark = pytest.mark.django_db


def _train(out):
    return model_train(family="demo", dataset_name="no-such-dataset", objective="contrastive", epochs=1, out_dir=out,
                       device="cpu")


def test_a_lock_left_by_a_killed_training_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{socket.gethostname()}:{dead.pid}:task-1")
    with pytest.raises(ValueError, match="no dataset named 'no-such-dataset'"):  # past the lock
        _train(tmp_path)
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_held_by_a_live_process_refuses_a_second_training(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        try:
            owner = f"{socket.gethostname()}:{alive.pid}:task-1"
            (tmp_path / LOCK_NAME).write_text(owner)
            with pytest.raises(ValueError, match=f"another training \\({owner}\\) is writing"):
                _train(tmp_path)
            assert (tmp_path / LOCK_NAME).read_text() == owner
        finally:
            alive.kill()
