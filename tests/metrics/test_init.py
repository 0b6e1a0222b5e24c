"""The metrics package is imported by the web process and by the model zoo's trainer: in a fresh interpreter it
must load without Django, Celery, kombu, torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(imports: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"{imports}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'django', 'celery', 'kombu', 'torch', 'transformers'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    return json.loads(result.stdout)


def test_the_metrics_modules_import_neither_django_nor_celery_nor_torch() -> None:
    imports = (
        "import hpbench.metrics.arena, hpbench.metrics.preference, hpbench.metrics.reliability\n"
        "import hpbench.metrics.retrieval"
    )
    assert _modules_after(imports) == []


def test_the_zoo_trainer_imports_the_metrics_without_django_or_celery() -> None:
    # models_zoo is Django-free; its trainer computes Recall@K with hpbench.metrics (torch is its own).
    assert _modules_after("import models_zoo.qure.trainer, hpbench.metrics") == ["torch"]
