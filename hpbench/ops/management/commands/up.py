"""``python manage.py up``: set up and run the whole platform on this machine (``make up``).

Idempotent: migrates, creates an ``admin`` account (password kept in ``var/admin-password.txt``),
generates and imports the demo dataset, registers the shipped demo models, starts real Celery
workers, Celery beat and the web server, queues what the demo still lacks (retrieval runs, then the demo
campaign, its simulated annotators, the frozen benchmark and the scores), and prints the URL to open.
Ctrl-C (or SIGTERM) stops them all.

Each queue gets a worker of its own with the solo pool (the task runs in the worker process: no pool
children to lose) and ``up`` restarts any worker or beat that dies; one that keeps dying is named (with its log)
and tried again each minute while the site stays up. A prefork pool on the filesystem broker
wedged once its children were killed (tasks received, never run; SIGTERM hung). A job whose worker died is
queued again by the reaper that beat runs (worker/claims.py): the filesystem broker does not redeliver.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from hpbench.ops.demo_setup import demo_fill, demo_prepare


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


RESTARTS_PER_MINUTE = 5  # a process dying faster than this is broken, not unlucky: say so and wait
BROKEN_PAUSE_SECONDS = 60  # how long a broken worker or beat waits before the next try (the site stays up)


def _commands(host: str, port: int, var: Path) -> dict[str, list[str]]:
    """The processes ``up`` runs: the web server first; the others are restarted when they die."""
    celery = [sys.executable, "-m", "celery", "-A", "hpbench.celery"]
    worker = [*celery, "worker", "-P", "solo", "-l", "INFO"]
    return {
        "web": [sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
        "worker-gpu": [*worker, "-Q", "gpu", "-n", "local-gpu@%h"],
        "worker-default": [*worker, "-Q", "default", "-n", "local-default@%h"],
        "beat": [*celery, "beat", "-l", "INFO", "-s", str(var / "celerybeat-schedule")],
    }


#: Libraries whose log lines and warnings (kombu's "No hostname was supplied", deprecations) would otherwise land
#: between the status lines: they go to var/logs/up.log.
LIBRARY_LOGGERS = ("kombu", "celery", "amqp", "py.warnings", "django", "urllib3", "PIL")


def route_library_logs(path: Path) -> None:
    """Send third-party log records and Python warnings to ``path`` instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False


class Command(BaseCommand):
    help = "Set up and run hpbench on this machine (web server + worker + demo data)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("HPBENCH_PORT", "8000")))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--per-category", type=int, default=400, help="Demo images per category.")
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo dataset and models.")
        parser.add_argument("--setup-only", action="store_true", help="Prepare everything, start nothing.")

    def handle(self, *args, **options) -> None:
        Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
        route_library_logs(Path(settings.VAR_DIR) / "logs" / "up.log")
        from hpbench.celery import ensure_broker_folders

        ensure_broker_folders()
        self.stdout.write("Migrating the database …")
        call_command("migrate", verbosity=0)
        password = self._admin_password()
        if not options["no_demo"]:
            demo_prepare(per_category=options["per_category"], log=self.stdout.write)
        if options["setup_only"]:
            return
        base_url = f"http://{options['host']}:{options['port']}"
        self._commands = _commands(options["host"], options["port"], Path(settings.VAR_DIR))
        processes = {name: self._spawn(name) for name in self._commands}
        self.stdout.write(f"web server, workers and beat started (logs in {Path(settings.VAR_DIR) / 'logs'}/)")
        log_names = ", ".join(sorted(path.name for path in (Path(settings.VAR_DIR) / "logs").glob("*.log")))
        self.stdout.write(self.style.SUCCESS(
            f"\nhpbench is running: open {base_url}/\n"
            f"  admin: {base_url}/admin/  (user admin, password {password})\n"
            f"  health: {base_url}/healthz\n"
            f"  logs: {Path(settings.VAR_DIR) / 'logs'}/ ({log_names})\n"
            "  Ctrl-C stops the web server, the workers and beat.\n"
        ))
        if not options["no_demo"]:
            filler = threading.Thread(
                target=demo_fill, kwargs={"base_url": base_url, "log": self.stdout.write}, daemon=True
            )
            filler.start()
        # `kill` (SIGTERM) stops everything too, as Ctrl-C does: without this the worker would outlive us.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._supervise(processes)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping …")
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=20)  # a solo worker finishes its task first: not forever
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def _supervise(self, processes: dict[str, subprocess.Popen]) -> None:
        """Restart a worker or beat that died; return when the web server stops.

        A worker or beat that died ``RESTARTS_PER_MINUTE`` times within a minute is broken: ``up`` says which and
        where its log is, keeps the web server (and the other processes) running, and tries it again after
        ``BROKEN_PAUSE_SECONDS``.
        """
        deaths: dict[str, deque[float]] = {name: deque(maxlen=RESTARTS_PER_MINUTE) for name in processes}
        paused: dict[str, float] = {}  # name -> when to try again
        while True:
            time.sleep(1)
            for name, process in processes.items():
                if process.poll() is None:
                    continue
                if name == "web":
                    self.stderr.write(f"the web server stopped (exit {process.returncode}); shutting down")
                    return
                now = time.monotonic()
                if name in paused:
                    if now < paused[name]:
                        continue
                    del paused[name]
                    deaths[name].clear()
                    self.stderr.write(f"{name}: trying again")
                else:
                    deaths[name].append(now)
                    if len(deaths[name]) == RESTARTS_PER_MINUTE and now - deaths[name][0] < 60:
                        paused[name] = now + BROKEN_PAUSE_SECONDS
                        self.stderr.write(self.style.ERROR(
                            f"{name} is failing: it died {RESTARTS_PER_MINUTE} times within a minute (last exit "
                            f"{process.returncode}); see {Path(settings.VAR_DIR) / 'logs' / name}.log. The site "
                            f"stays up; trying {name} again in {BROKEN_PAUSE_SECONDS} s"
                        ))
                        continue
                    self.stderr.write(f"{name} stopped (exit {process.returncode}); restarting it")
                processes[name] = self._spawn(name)

    def _admin_password(self) -> str:
        path = Path(settings.VAR_DIR) / "admin-password.txt"
        users = get_user_model().objects
        if path.exists() and users.filter(username="admin").exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(12)
        admin = users.filter(username="admin").first() or users.create_superuser("admin", "", password)
        admin.set_password(password)
        admin.is_staff = admin.is_superuser = True
        admin.save()
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password

    def _spawn(self, name: str) -> subprocess.Popen:
        logs = Path(settings.VAR_DIR) / "logs"
        logs.mkdir(exist_ok=True)
        with (logs / f"{name}.log").open("a") as log:
            return subprocess.Popen(self._commands[name], stdout=log, stderr=subprocess.STDOUT)

