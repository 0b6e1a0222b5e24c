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
from safetensors.numpy import save as save_safetensors

from tests.annotate.conftest import make_campaign, make_world
from tests.hpbench.api_fuzz import fuzz

# The live server answers from threads of its own (their own connections): rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

#: Examples per operation in the fuzzing phase: enough to find the bugs of issue 14 in ~1 minute per role.
MAX_EXAMPLES = int(os.environ.get("HPBENCH_FUZZ_EXAMPLES", "8"))


@pytest.fixture
def api_world(researcher, outsider):
    """Rows for every kind of answer: datasets, queries with runs, an open campaign, a benchmark, submissions."""
    from hpbench.leaderboard import services
    from hpbench.leaderboard.services import PairSpec, benchmark_store

    world = make_world(n_queries=3, n_images=12)
    make_campaign(world)
    ids = [image.pk for image in world.images]
    pairs = [PairSpec(reference_id=ids[0], text=f"t{n}", set1=(ids[1], ids[2]), set2=(ids[3], ids[4]),
                      preference=1 + n % 2) for n in range(4)]
    benchmark_store(name="bench", source="imported", dataset=world.dataset, pairs=pairs)
    for owner in (researcher, outsider):
        services.submission_create(
            owner=owner, family="clip_zeroshot",
            file=SimpleUploadedFile("m.safetensors", save_safetensors({"w": np.zeros((2, 2), dtype=np.float32)})),
        )
    return world


def _write_report(report) -> None:
    target = os.environ.get("HPBENCH_FUZZ_REPORT")  # bench/api_fuzz.py collects the figures here
    if target:
        path = Path(target)
        rows = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*rows, report.as_dict()], indent=1))


@pytest.mark.parametrize("role", ["anonymous", "researcher"])
def test_a_fuzzer_finds_no_server_error_undocumented_status_or_schema_violation(
    role, api_world, researcher, live_server
):
    token = Token.objects.get_or_create(user=researcher)[0].key if role == "researcher" else None
    report = fuzz(base_url=live_server.url, role=role, token=token, max_examples=MAX_EXAMPLES)
    _write_report(report)
    assert report.operations >= 20 and report.examples > 100, report.as_dict()
    assert not report.errors and not report.failures, "\n".join(report.errors + report.failures)
