"""bench/fewer_votes_ppi.py runs end to end on a small world and ends with the line the issue asks for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_bench_prints_its_table_and_the_best_line():
    out = subprocess.run(
        [sys.executable, "bench/fewer_votes_ppi.py", "--seeds", "2", "--queries", "300", "--budget", "3000",
         "--quality-train", "500", "--min-labelled", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    lines = out.stdout.strip().splitlines()
    assert "adaptive, uncertain pairs, PPI++" in out.stdout
    assert re.fullmatch(r"best: \d+% of the baseline's votes \[\d+%, \d+%\], coverage \d+%", lines[-1]), lines[-1]
