"""bench/steering_attack.py runs end to end in its quick mode (a smaller run than the report's, so it cannot rot)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_steering_attack_prints_its_figures_in_quick_mode():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run(
        [sys.executable, "bench/steering_attack.py", "--quick", "--port", "8772"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "now 0 of 30" in out.stdout  # no query whose results were public is drawn
    assert "public /images/<id>, now (re-encoded): 0 of" in out.stdout
    # Comparisons whose two sets are identical are skipped at build, so the number of sets varies a little.
    assert re.search(r"the models rerun locally, now \(re-encoded\): 0 of \d+ \(0 wrong\)", out.stdout)
    assert "== 2. Steering: 20 annotators, 2 of them attackers" in out.stdout
    assert "== 3. When the attackers are caught" in out.stdout
