"""Who can see a benchmark's verdicts: an imported release's are public (score-file rows are marked); a campaign
benchmark can keep a hidden split whose verdicts are never exported or shown, where score files are ranked."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from hpbench.catalog.models import Dataset, Image, ModelEntry
from hpbench.exports.selectors import params as export_params
from hpbench.exports.selectors.comparisons import comparisons_queryset
from hpbench.exports.selectors.params import ExportError
from hpbench.exports.selectors.votes import votes_queryset
from hpbench.leaderboard.models import BenchmarkPair, ModelScore, PreferenceBenchmark
from hpbench.leaderboard.scorefiles import benchmark_request
from hpbench.leaderboard.services.benchmarks import benchmark_freeze, benchmark_import_hpfiq
from hpbench.leaderboard.services.scores import model_score_store
from tests.annotate.conftest import make_campaign, make_world
from tests.annotate.test_adaptive import crowd, task_of, vote_for

pytestmark = pytest.mark.django_db


def _hpfiq_file(path, dataset: Dataset):
    """A released-layout file of two questions by one annotator, on images the dataset holds."""
    for name in ("r0", "t0", *(f"i{i}" for i in range(10))):
        Image.objects.create(dataset=dataset, name=name, category="dress", split="val", file_path=f"{name}.jpg")
    image = "/-/image_data/dress/{}.jpg".format
    question = {
        "ref_img_paths": [image("r0"), image("r0")],
        "targ_img_paths": [image("t0"), image("t0")],
        "sentences": ["is red and long", "is blue"],
        "retrieved_set1": [{"img_path": [image(f"i{i}") for i in range(5)], "user_score": "4"}] * 2,
        "retrieved_set2": [{"img_path": [image(f"i{i}") for i in range(5, 10)], "user_score": "2"}] * 2,
        "preferred set": ["1", "2"],
    }
    path.write_text(json.dumps({"user_1": {"question_set_1": question}}))
    return path


def test_an_imported_release_has_public_labels_and_its_score_file_rows_are_marked(tmp_path, client):
    dataset = Dataset.objects.create(name="fiq-public", kind=Dataset.Kind.FASHIONIQ, image_root="/tmp")
    benchmark = benchmark_import_hpfiq(path=_hpfiq_file(tmp_path / "hpfiq.json", dataset), dataset=dataset).benchmark
    assert benchmark.labels_public is True
    authors = ModelEntry.objects.create(name="authors-scores", family=ModelEntry.Family.SCORES, is_public=True)
    platform = ModelEntry.objects.create(name="platform-run", family="demo", is_public=True)
    for model in (authors, platform):
        score = ModelScore.objects.create(model=model, benchmark=benchmark)
        model_score_store(score_id=score.pk, set1=[1.0, 0.0], set2=[0.0, 1.0])
    page = client.get(reverse("leaderboard-board", args=[benchmark.name])).content.decode()
    assert page.count("labels public: a score file can encode them") == 1  # the score file's row only
    assert "Labels public: the human verdicts of this benchmark are published" in page
    api = client.get(f"/api/leaderboard/benchmarks/{benchmark.name}").json()["rows"]
    marks = {r["model"]: r["labels_public"] for r in api}
    assert marks == {"authors-scores": True, "platform-run": False}


def _campaign_with_votes(n_queries: int = 12):
    # One person votes at once on every comparison: no minimum vote time and no per-model-pair cap here.
    campaign = make_campaign(make_world(n_queries=n_queries, n_models=2), per_person_quota=0, votes_per_pair=1,
                             seed=11, min_vote_ms=0, max_votes_per_model_pair=0)
    person = crowd(campaign, "P0")
    while (task := task_of(person, campaign)) is not None:
        vote_for(person, task.lease, "a")
    return campaign


def test_a_hidden_split_is_frozen_apart_deterministically_and_its_verdicts_are_never_exported(client, staff_user):
    campaign = _campaign_with_votes()
    result = benchmark_freeze(campaign=campaign, hidden_share=0.4)
    public = result.benchmark
    hidden = PreferenceBenchmark.objects.get(hidden_split_of=public)
    assert hidden.name == f"{public.name}-hidden" and hidden.labels_hidden and not public.labels_hidden
    assert result.report["hidden_pairs"] == hidden.n_pairs >= 1 and public.n_pairs >= 1
    assert public.n_pairs + hidden.n_pairs == 12
    public_keys = set(public.pairs.values_list("source_key", flat=True))
    hidden_keys = set(hidden.pairs.values_list("source_key", flat=True))
    assert not public_keys & hidden_keys
    # Freezing the same votes again gives the same split (same versions).
    again = benchmark_freeze(campaign=campaign, hidden_share=0.4)
    assert again.benchmark.pk == public.pk and not again.created
    assert set(PreferenceBenchmark.objects.get(hidden_split_of=public).pairs.values_list(
        "source_key", flat=True)) == hidden_keys

    # Exports: the hidden split is refused, and neither the votes nor the comparisons behind it come out.
    with pytest.raises(ExportError, match="hidden split"):
        export_params.params_parse(benchmark=hidden.name)
    hidden_ids = {int(k.split(":")[1]) for k in hidden_keys}
    params = export_params.params_parse(campaigns=[campaign.slug])
    exported_votes = set(votes_queryset(params).values_list("comparison_id", flat=True))
    exported_comparisons = set(comparisons_queryset(params).values_list("pk", flat=True))
    assert exported_votes and not exported_votes & hidden_ids
    assert exported_comparisons and not exported_comparisons & hidden_ids
    client.force_login(staff_user)
    refused = client.post("/api/exports/jobs", {"benchmark": hidden.name, "format": "jsonl"},
                          content_type="application/json")
    assert refused.status_code == 400 and "hidden split" in refused.content.decode()

    # The request file researchers score carries the questions, never the verdicts.
    lines = [json.loads(line) for line in benchmark_request(hidden)]
    assert len(lines) == hidden.n_pairs and all("preference" not in line and "votes" not in line for line in lines)

    # Score files are ranked on it; the pages say so and show no verdict.
    model = ModelEntry.objects.create(name="scored-hidden", family=ModelEntry.Family.SCORES, is_public=True)
    score = ModelScore.objects.create(model=model, benchmark=hidden)
    model_score_store(score_id=score.pk, set1=[1.0] * hidden.n_pairs, set2=[0.0] * hidden.n_pairs)
    page = client.get(reverse("leaderboard-board", args=[hidden.name]) + f"?version={hidden.version}")
    assert page.status_code == 200 and "score files are ranked here" in page.content.decode()
    assert "scored-hidden" in page.content.decode()
    public_page = client.get(reverse("leaderboard-board", args=[public.name])).content.decode()
    assert f"Score files are ranked on the hidden split {hidden.name}" in public_page
    assert BenchmarkPair.objects.filter(benchmark=hidden).count() == hidden.n_pairs


def test_a_hidden_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="hidden share"):
        benchmark_freeze(campaign=_campaign_with_votes(n_queries=2), hidden_share=1.0)
