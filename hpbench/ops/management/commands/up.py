"""``python manage.py up``: set up and run the whole platform on this machine (``make up``).

Idempotent: migrates, creates an ``admin`` account (password kept in ``var/admin-password.txt``),
generates and imports the demo dataset, registers the shipped demo models, starts a real Celery
worker and the web server, queues what the demo still lacks (retrieval runs, then the demo campaign,
its simulated annotators, the frozen benchmark and the scores), and prints the URL to open.
Ctrl-C stops the worker and the server.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from hpbench.ops.demo_setup import demo_fill, demo_prepare


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


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
        processes = self._start(options["host"], options["port"])
        self.stdout.write(self.style.SUCCESS(
            f"\nhpbench is running: open {base_url}/\n"
            f"  admin: {base_url}/admin/  (user admin, password {password})\n"
            f"  health: {base_url}/healthz\n"
            "  Ctrl-C stops the web server and the worker.\n"
        ))
        if not options["no_demo"]:
            filler = threading.Thread(
                target=demo_fill, kwargs={"base_url": base_url, "log": self.stdout.write}, daemon=True
            )
            filler.start()
        # `kill` (SIGTERM) stops everything too, as Ctrl-C does: without this the worker would outlive us.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(1)
            self.stderr.write("a process stopped; shutting down")
        except KeyboardInterrupt:
            self.stdout.write("\nstopping …")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()

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

    def _start(self, host: str, port: int) -> list[subprocess.Popen]:
        logs = Path(settings.VAR_DIR) / "logs"
        logs.mkdir(exist_ok=True)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hpbench.celery", "worker", "-Q", "default,gpu", "-c", "2",
             "-n", "local@%h", "-l", "INFO"],
            stdout=(logs / "worker.log").open("a"), stderr=subprocess.STDOUT,
        )
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            stdout=(logs / "web.log").open("a"), stderr=subprocess.STDOUT,
        )
        self.stdout.write(f"worker and web server started (logs in {logs}/)")
        return [worker, web]

