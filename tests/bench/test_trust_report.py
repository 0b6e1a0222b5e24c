"""bench/trust_report.py runs end to end in its quick mode (a smaller run than the report's, so it cannot rot)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_trust_report_prints_its_tables_with_no_failure_in_quick_mode():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run(
        [sys.executable, "bench/trust_report.py", "--quick", "--sections", "votes,inputs,matrix",
         "--faults", "worker SIGKILL", "--duration", "2", "--port", "8201", "--redis-port", "8291"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "== 1. Votes under faults" in out.stdout
    assert "worker SIGKILL" in out.stdout
    assert "== 3. Bad inputs over HTTP" in out.stdout
    assert "== 4. Endpoint x role" in out.stdout
    assert "cells contradicting the intended rights: 0" in out.stdout
    assert "/api/exports/jobs" in out.stdout
