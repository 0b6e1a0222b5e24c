import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_process_never_imports_torch_or_transformers(tmp_path):
    code = (
        "import sys; from hpbench.wsgi import application; from django.urls import get_resolver; "
        "get_resolver().url_patterns; from django.contrib import admin; admin.autodiscover(); "
        "import hpbench.celery; hpbench.celery.app.loader.import_default_modules(); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "HPBENCH_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
