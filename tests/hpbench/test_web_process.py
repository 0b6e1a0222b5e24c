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


def test_a_page_that_needs_an_account_sends_people_to_a_working_login_page(client, db, researcher):
    response = client.get("/submissions/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith("/accounts/login/?next=/submissions/")
    assert b"<h1>Log in</h1>" in response.content
    response = client.post("/accounts/login/", {"username": "researcher", "password": "researcher-pass-123",
                                                "next": "/submissions/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/submissions/"
    assert response.context["user"].username == "researcher"


def test_the_api_docs_and_schema_are_served_without_any_outside_host(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/annotate/votes" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn.jsdelivr.net" not in docs.content and b"/static/drf_spectacular_sidecar/" in docs.content
