"""The OpenAPI schema (``/api/schema/``, ``hpbench/openapi.py``) and a fuzzer run against it.

The fuzzer (schemathesis, every check; ``tests/hpbench/api_fuzz.py``) runs anonymously and as a researcher with
a token, on a catalogue with finished runs, an open campaign, an active benchmark and the researcher's own
submission: it must find no 5xx, no undocumented status code and no answer that breaks its documented schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from tests.annotate.conftest import make_campaign, make_world
from tests.hpbench.api_fuzz import fuzz

#: Examples per operation in the fuzzing phase: enough to find the bugs of issue 14 in ~1 minute per role.
MAX_EXAMPLES = int(os.environ.get("HPBENCH_FUZZ_EXAMPLES", "8"))


@pytest.fixture
def api_world(researcher, outsider):
    """Rows for every kind of answer: datasets, queries with runs, an open campaign, a benchmark, submissions."""
    from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
    from hpbench.leaderboard.services.submissions import submission_create

    world = make_world(n_queries=3, n_images=12)
    world.campaign = make_campaign(world).slug  # type: ignore[attr-defined]
    ids = [image.pk for image in world.images]
    pairs = [PairSpec(reference_id=ids[0], text=f"t{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                      preference=1 + n % 2) for n in range(4)]
    benchmark_store(name="bench", source="imported", dataset=world.dataset, pairs=pairs)
    for owner in (researcher, outsider):
        submission_create(
            owner=owner, family="clip4cir",
            file=SimpleUploadedFile("m.safetensors", save_safetensors({"w": np.zeros((2, 2), dtype=np.float32)})),
        )
    return world


def _schema() -> tuple[dict, list[str]]:
    """The schema as ``/api/schema/`` serves it, and drf-spectacular's warnings and errors while generating it."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    GENERATOR_STATS.silent = True
    try:
        schema = SchemaGenerator().get_schema(request=None, public=True)
    finally:
        GENERATOR_STATS.silent = False
    validate_schema(schema)  # OpenAPI 3 structure; raises on a broken schema
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    GENERATOR_STATS.reset()
    return json.loads(json.dumps(schema, default=str)), problems


def _operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_generates_without_warnings_and_names_every_operation_once():
    schema, problems = _schema()
    assert problems == []
    ids = [operation["operationId"] for _, operation in _operations(schema)]
    assert len(ids) == len(set(ids)) and len(ids) >= 20
    assert [name for name, operation in _operations(schema) if not operation.get("summary")] == []


def test_every_operation_documents_its_success_body_and_the_common_json_errors():
    schema, _ = _schema()
    for name, operation in _operations(schema):
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success and all(responses[code].get("content") for code in success), name
        expected = {"400", "403"} | ({"404"} if "{" in name else set()) | (
            {"413", "415"} if "requestBody" in operation else set())
        assert expected <= set(responses), (name, sorted(responses))
        for code, response in responses.items():
            if code.startswith("4"):  # {"detail": ...} (a 400 may also be a refused form's fields)
                media = response["content"]["application/json"]["schema"]
                first = media.get("anyOf", [media])[0]
                component = schema["components"]["schemas"][first["$ref"].rsplit("/", 1)[-1]]
                assert component["properties"]["detail"]["type"] == "string", (name, code)
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]


#: Success bodies documented as a bare JSON object: the split request file, whose keys are the dataset's (README).
FREE_FORM = {"GET /api/leaderboard/requests/datasets/{name}/{split}"}


def test_every_json_success_body_has_a_documented_shape():
    schema, _ = _schema()
    bare = [name for name, operation in _operations(schema) for code, response in operation["responses"].items()
            if code.startswith("2") and (body := response["content"].get("application/json", {}).get("schema"))
            and body.get("type") == "object" and not body.get("properties")]
    assert set(bare) == FREE_FORM


def test_the_query_parameters_are_documented():
    schema, _ = _schema()
    parameters = {name: {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                  for name, operation in _operations(schema)}
    assert parameters["GET /api/queries/{query_id}/results"] == {"k"}
    assert parameters["GET /api/leaderboard/benchmarks/{name}"] == {"version", "sort"}
    assert parameters["GET /api/leaderboard/requests/benchmarks/{name}"] == {"version"}


def test_the_next_task_answer_documents_its_sets_as_lists_and_a_completion_that_may_be_null():
    schema, _ = _schema()
    components = schema["components"]["schemas"]
    sets = components["AnnotateSets"]["properties"]
    assert sets["left"]["type"] == sets["right"]["type"] == "array"
    assert sets["left"]["items"]["$ref"].endswith("/AnnotateSetImage")
    answer = components["AnnotateNext"]["properties"]
    assert answer["completion"]["nullable"] is True and answer["task"]["nullable"] is True


@pytest.mark.django_db
def test_a_bad_benchmark_version_or_sort_is_a_400_naming_it(api_world):
    client = APIClient()
    for query in ("version=abc", "version=", "version=99999999999999999999", "version=0", "sort="):
        response = client.get(f"/api/leaderboard/benchmarks/bench?{query}")
        assert response.status_code == 400, (query, response.content)
        assert query.split("=")[0] in response.json(), response.json()
    assert client.get("/api/leaderboard/benchmarks/bench?version=1&sort=-recall").status_code == 200
    assert client.get("/api/leaderboard/benchmarks/bench/csv?version=2147483647").status_code == 404


def _crowd_worker(base_url: str, slug: str) -> tuple[dict[str, str], str]:
    """Enter the campaign by its crowd link as a Prolific participant; returns the headers that make every request
    theirs (the annotator and CSRF cookies, the CSRF token) and the campaign's slug."""
    import http.cookiejar
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    query = "PROLIFIC_PID=fuzz-participant&STUDY_ID=fuzz-study&SESSION_ID=fuzz-session"
    with opener.open(f"{base_url}/api/annotate/campaigns/{slug}/enter?{query}", timeout=30) as answer:
        assert answer.status == 200
    cookies = {cookie.name: cookie.value for cookie in jar}
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "X-CSRFToken": cookies["csrftoken"]}, slug


def _write_report(report) -> None:
    target = os.environ.get("HPBENCH_FUZZ_REPORT")  # bench/api_fuzz.py collects the figures here
    if target:
        path = Path(target)
        rows = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*rows, report.as_dict()], indent=1))


# The live server answers from threads of its own (their own connections): rows must be committed.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["anonymous", "researcher", "staff", "crowd"])
def test_a_fuzzer_finds_no_server_error_undocumented_status_or_schema_violation(
    role, api_world, researcher, staff_user, live_server
):
    user = {"researcher": researcher, "staff": staff_user}.get(role)
    token = Token.objects.get_or_create(user=user)[0].key if user else None
    headers, campaign = (_crowd_worker(live_server.url, api_world.campaign) if role == "crowd" else (None, None))
    report = fuzz(base_url=live_server.url, role=role, token=token, max_examples=MAX_EXAMPLES, headers=headers,
                  campaign=campaign)
    _write_report(report)
    assert report.operations >= 20 and report.examples > 100, report.as_dict()
    assert not report.errors and not report.failures, "\n".join(report.errors + report.failures)
