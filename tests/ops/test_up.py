"""`manage.py up`: the embedded platform starts, serves, and stops with its worker (a real process tree)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_up_stops_its_web_server_and_worker_on_sigterm(tmp_path):
    port = _free_port()
    unset = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"HPBENCH_VAR_DIR": str(tmp_path)}
    up = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert up.poll() is None, "manage.py up exited before serving"
                assert time.monotonic() < deadline, "manage.py up did not serve within 2 minutes"
                time.sleep(0.5)
        started = _children(up.pid)
        assert len(started) >= 2  # the web server and the Celery worker (and its pool)

        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _children(up.pid) & started or any(Path(f"/proc/{pid}").exists() for pid in started):
            assert time.monotonic() < deadline, f"still running after SIGTERM: {sorted(started)}"
            time.sleep(0.5)
    finally:
        if up.poll() is None:
            up.kill()
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)  # what a failing run left behind
            except ProcessLookupError:
                pass


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _celery(pid: int, kind: str) -> bool:
    args = _cmdline(pid)
    return "celery" in args and kind in args


def test_the_embedded_workers_come_back_after_a_sigkill_and_still_run_tasks(tmp_path):
    port = _free_port()
    unset = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE",
             "CELERY_RESULT_BACKEND"}
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"HPBENCH_VAR_DIR": str(tmp_path)}
    up = subprocess.Popen([sys.executable, "manage.py", "up", "--no-demo", "--port", str(port)], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not any(_celery(pid, "worker") for pid in _children(up.pid)) or not any(
            _celery(pid, "beat") for pid in _children(up.pid)
        ):
            assert up.poll() is None and time.monotonic() < deadline, "manage.py up did not start its workers"
            time.sleep(0.5)
        workers = {pid for pid in _children(up.pid) if _celery(pid, "worker")}
        assert len(workers) == 2  # solo pool: one process per queue, nothing else to lose
        started |= workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)

        deadline = time.monotonic() + 60
        while len({pid for pid in _children(up.pid) if _celery(pid, "worker")} - workers) < 2:
            assert up.poll() is None, "manage.py up stopped when its workers were killed"
            assert time.monotonic() < deadline, "the killed workers were not started again within 60 s"
            time.sleep(0.5)
        started |= _children(up.pid)
        # A task sent after the kill runs (through the filesystem broker, as the web server sends it).
        code = "import django; django.setup(); from worker.tasks.health import count_users; " \
               "print(count_users.delay().get(timeout=90))"
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=150,
                                env=env | {"DJANGO_SETTINGS_MODULE": "hpbench.settings"})
        assert result.returncode == 0, result.stderr[-2000:]
        assert int(result.stdout.split()[-1]) >= 1  # the admin account `up` created

        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() and _cmdline(pid) for pid in started):
            assert time.monotonic() < deadline, "processes still running after SIGTERM"
            time.sleep(0.5)
    finally:
        if up.poll() is None:
            up.kill()
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_worker_that_keeps_dying_is_named_and_the_web_server_stays_up(tmp_path, settings):
    """The supervisor on real processes: a "worker" that exits at once, and a "web server" that runs."""
    import io
    import threading

    from hpbench.ops.management.commands import up as up_command

    settings.VAR_DIR = tmp_path
    err = io.StringIO()
    command = up_command.Command(stderr=err)
    command._commands = {"web": [sys.executable, "-c", "import time; time.sleep(120)"],
                         "worker-gpu": [sys.executable, "-c", "import sys; print('no GPU here'); sys.exit(3)"]}
    processes = {name: command._spawn(name) for name in command._commands}
    supervisor = threading.Thread(target=command._supervise, args=(processes,), daemon=True)
    supervisor.start()
    try:
        deadline = time.monotonic() + 60
        while "worker-gpu is failing" not in err.getvalue():
            assert time.monotonic() < deadline, "the failing worker was not named within 60 s"
            assert supervisor.is_alive(), "the supervisor gave up (and `up` would stop the web server)"
            time.sleep(0.5)
        time.sleep(2)
        assert supervisor.is_alive() and processes["web"].poll() is None  # the site stays up
        assert processes["worker-gpu"].poll() == 3  # not restarted in a loop meanwhile
        log = tmp_path / "logs" / "worker-gpu.log"
        assert log.read_text().count("no GPU here") == up_command.RESTARTS_PER_MINUTE
        assert f"see {log}" in err.getvalue()
    finally:
        processes["web"].kill()
        supervisor.join(timeout=10)
    assert not supervisor.is_alive()  # the web server stopped: `up` shuts down
