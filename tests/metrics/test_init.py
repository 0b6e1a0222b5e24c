"""The metrics package is imported by the web process: it must not pull in Django, torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_metrics_modules_import_neither_django_nor_torch() -> None:
    # ``import hpbench`` itself loads the Celery app (which touches django.utils); the metrics modules must
    # add no Django, torch or transformers module on top of that.
    code = (
        "import json, sys\n"
        "import hpbench\n"
        "before = set(sys.modules)\n"
        "import hpbench.metrics.arena, hpbench.metrics.preference, hpbench.metrics.reliability\n"
        "import hpbench.metrics.retrieval\n"
        "added = set(sys.modules) - before\n"
        "print(json.dumps({'added': sorted(m for m in added if m.split('.')[0] in"
        " ('django', 'torch', 'transformers')), 'torch': 'torch' in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == {"added": [], "torch": False}
