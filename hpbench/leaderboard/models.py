"""Preference benchmarks (frozen judged pairs), model scores on them, and researchers' submissions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from hpbench.catalog.links import validate_http_url
from hpbench.catalog.models import Dataset, Image, JobStatus, ModelEntry, Query

if TYPE_CHECKING:
    import numpy as np


class PreferenceBenchmark(models.Model):
    """A frozen, versioned set of judged pairs; never edited after it is created."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported file"
        CAMPAIGN = "campaign", "Frozen from a campaign"

    class TiePolicy(models.TextChoices):
        DROP = "drop", "Drop pairs whose majority is a tie"
        KEEP = "keep-as-tie", "Keep them as human ties (excluded from scores, counted)"

    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=Source.choices)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="preference_benchmarks")
    campaign = models.ForeignKey(
        "annotate.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="benchmarks"
    )
    tie_policy = models.CharField(max_length=16, choices=TiePolicy.choices, default=TiePolicy.KEEP)
    fingerprint = models.CharField(
        max_length=64, help_text="sha256 of the pairs' content; same content = same version."
    )
    frozen_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True, default="")
    n_pairs = models.PositiveIntegerField(default=0)
    votes_per_pair = models.FloatField(default=1.0)
    human_agreement = models.FloatField(null=True, blank=True, help_text="Pairwise agreement of annotators.")
    human_alpha = models.FloatField(null=True, blank=True, help_text="Krippendorff's alpha (nominal).")
    # The human ceiling in the models' units (hpbench.metrics.heldout.loo_ceiling): each vote against the majority
    # of the other votes on its pair; null with one vote per pair.
    ceiling_loo = models.FloatField(
        null=True, blank=True, help_text="Share of votes agreeing with their leave-one-out majority."
    )
    ceiling_loo_low = models.FloatField(null=True, blank=True)
    ceiling_loo_high = models.FloatField(null=True, blank=True)
    ceiling_loo_pairs = models.PositiveIntegerField(default=0, help_text="Pairs with a leave-one-out unit.")
    preference_ratio_chance = models.FloatField(
        null=True, blank=True, help_text="Expected preference ratio of random scores (share of pairs preferring set 1)."
    )
    report = models.JSONField(default=dict, blank=True, help_text="What the import or freeze left out, and why.")
    labels_public = models.BooleanField(
        default=False,
        help_text="Its human verdicts are published (an imported release such as HP-FashionIQ): a score file can "
                  "simply encode them, so its score-file rows are marked.",
    )
    hidden_split_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="hidden_splits",
        help_text="This benchmark is the hidden split of that one: its verdicts are never exported or shown, and "
                  "score files are ranked on it (as challenge servers keep test labels).",
    )

    class Estimator(models.TextChoices):
        CLASSIC = "classic", "Classic (human-labelled pairs only)"
        PPI = "ppi", "Prediction-powered (PPI++ with the preference model)"

    agreement_estimator = models.CharField(
        max_length=8, choices=Estimator.choices, default=Estimator.CLASSIC,
        help_text="How the leaderboard estimates agreement: from the labelled pairs alone, or prediction-powered "
                  "(hpbench.metrics.ppi) with its latest finished preference model's predictions on every candidate.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="benchmark_unique_version"),
        ]
        ordering = ["name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def labels_hidden(self) -> bool:
        return self.hidden_split_of_id is not None


class BenchmarkPair(models.Model):
    """One judged question: a query and two sets of images, with the human verdict."""

    class Preference(models.IntegerChoices):
        TIE = 0, "Tie"
        SET1 = 1, "Set 1"
        SET2 = 2, "Set 2"

    benchmark = models.ForeignKey(PreferenceBenchmark, on_delete=models.CASCADE, related_name="pairs")
    position = models.PositiveIntegerField()
    query = models.ForeignKey(Query, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reference = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    set1_image_ids = models.JSONField(default=list)
    set2_image_ids = models.JSONField(default=list)
    set1_model = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set2_model = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Every model whose top-k is the set (ids): its maker, and any model producing the identical set; a model is
    # held out of the pairs where it made neither set (hpbench.metrics.heldout). Empty for imported pairs.
    set1_makers = models.JSONField(default=list, blank=True)
    set2_makers = models.JSONField(default=list, blank=True)
    preference = models.PositiveSmallIntegerField(choices=Preference.choices)
    likert1 = models.FloatField(null=True, blank=True)
    likert2 = models.FloatField(null=True, blank=True)
    votes = models.JSONField(
        default=list,
        blank=True,
        help_text='Per vote: {"annotator": str, "choice": 1|2|0, "likert1": n|null, "likert2": n|null}.',
    )
    source_key = models.CharField(max_length=255, blank=True, default="", help_text="Where it came from.")
    # From a campaign (benchmark_freeze): the votes the comparison got, why it stopped asking ("decided",
    # "max_votes", or "open" when frozen while it still asked for votes), and its selection weight (1/π relative
    # to uniform; the scores weight pairs by it, hpbench.metrics.adaptive).
    n_votes = models.PositiveIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=10, blank=True, default="")
    selection_weight = models.FloatField(default=1.0)
    # Informative pair selection: the round that drew the comparison (1 = the build) and its probability in it.
    selection_round = models.PositiveSmallIntegerField(default=0)
    selection_pi = models.FloatField(null=True, blank=True)
    # The pair's own category (FashionIQ: dress, shirt, toptee): its query's, or for HP-FashionIQ the folder of its
    # reference path (image_data/<category>/). Not the reference image's row, which FashionIQ may list under two.
    category = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["benchmark", "position"], name="pair_unique_position"),
        ]
        ordering = ["benchmark", "position"]

    def __str__(self) -> str:
        return f"{self.benchmark_id}#{self.position}"


class ModelScore(models.Model):
    """One model's agreement with one benchmark's human verdicts (computed by a worker)."""

    Status = JobStatus

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="preference_scores")
    benchmark = models.ForeignKey(PreferenceBenchmark, on_delete=models.CASCADE, related_name="scores")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    preference_ratio = models.FloatField(null=True, blank=True)
    preference_ratio_low = models.FloatField(null=True, blank=True)
    preference_ratio_high = models.FloatField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    agreement_low = models.FloatField(null=True, blank=True)
    agreement_high = models.FloatField(null=True, blank=True)
    n_pairs = models.PositiveIntegerField(default=0)
    n_human_ties = models.PositiveIntegerField(default=0)
    n_model_ties = models.PositiveIntegerField(default=0)
    # The headline: agreement on the pairs where neither set is the model's own (all pairs when it made none);
    # null until computed from pair_choices (scores stored before, until rescored).
    heldout_agreement = models.FloatField(null=True, blank=True)
    heldout_agreement_low = models.FloatField(null=True, blank=True)
    heldout_agreement_high = models.FloatField(null=True, blank=True)
    heldout_n_pairs = models.PositiveIntegerField(null=True, blank=True, help_text="Held-out pairs with a preference.")
    # The model against the leave-one-out majorities of the human ceiling, on its held-out pairs.
    loo_agreement = models.FloatField(null=True, blank=True)
    loo_agreement_low = models.FloatField(null=True, blank=True)
    loo_agreement_high = models.FloatField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    pair_choices = models.BinaryField(
        null=True, blank=True, editable=False,
        help_text="The set the model scores higher on each pair, in position order: one byte each, 1 = set 1, "
                  "2 = set 2, 0 = equal scores (hpbench.metrics.preference.model_choices). Every figure is a "
                  "function of these and the pairs' verdicts; null for scores stored before they were kept.",
    )
    by_category = models.JSONField(
        default=dict, blank=True,
        help_text='Per category of the pairs\' reference images (FashionIQ: dress, shirt, toptee): {"dress": '
                  '{"agreement", "agreement_low", "agreement_high", "preference_ratio", "n_pairs"}}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    # The worker's claim (worker/claims.py): who runs it, when it last said so, how often a lost worker was replaced.
    claimed_by = models.CharField(max_length=255, blank=True, default="", help_text="host:pid:task of the worker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0, help_text="Times it was taken over from a lost worker.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "benchmark"], name="score_unique_model_benchmark"),
        ]
        ordering = ["benchmark", "-agreement"]

    def __str__(self) -> str:
        return f"{self.model_id} on {self.benchmark_id}: {self.status}"

    def choices(self) -> np.ndarray | None:
        """:attr:`pair_choices` as an ``int8`` array (benchmark position order), or ``None`` when not stored."""
        import numpy as np

        if self.pair_choices is None:
            return None
        return np.frombuffer(bytes(self.pair_choices), dtype=np.int8)


class Submission(models.Model):
    """A researcher's checkpoint, evaluated on every active benchmark; private until published."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted"
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"
        CANCELLED = "cancelled"

    DONE = (Status.FINISHED, Status.FAILED, Status.CANCELLED)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    model = models.OneToOneField(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="submission"
    )
    family = models.CharField(max_length=32)
    variant = models.CharField(max_length=64, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    link = models.URLField(blank=True, default="", validators=[validate_http_url])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    progress = models.FloatField(default=0.0)
    log = models.TextField(blank=True, default="", help_text="The error first, then the steps.")
    is_public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "created_at"], name="submission_quota_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"submission {self.pk} by {self.owner_id} ({self.status})"


class ScoreFile(models.Model):
    """A file of scores the authors of a model computed themselves (``hpbench/leaderboard/scorefiles.py``).

    ``relevance``: per (question, image) relevance for one preference benchmark version (JSON Lines or Parquet).
    ``ranking``: top-K image names per query of one dataset split (the official CIRR test-submission JSON;
    ``metric`` is ``recall`` or ``recall_subset``). A researcher's file has no target until a worker validated it
    (``default.scorefiles.check``); it is read again when scored.
    """

    class Kind(models.TextChoices):
        RELEVANCE = "relevance", "Relevance per (question, image)"
        RANKING = "ranking", "Top-K rankings per query"

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="score_files")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    benchmark = models.ForeignKey(
        PreferenceBenchmark, null=True, blank=True, on_delete=models.CASCADE, related_name="score_files"
    )
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    split = models.CharField(max_length=32, blank=True, default="")
    metric = models.CharField(max_length=16, blank=True, default="", help_text="Rankings: recall or recall_subset.")
    file = models.FileField(upload_to="scorefiles/%Y/%m/")
    rows = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "benchmark"], condition=models.Q(kind="relevance"),
                                    name="scorefile_one_per_benchmark"),
            models.UniqueConstraint(fields=["model", "dataset", "split", "metric"], condition=models.Q(kind="ranking"),
                                    name="scorefile_one_per_split_metric"),
        ]
        ordering = ["model", "id"]

    def __str__(self) -> str:
        target = self.benchmark.label if self.benchmark is not None else f"{self.dataset_id}/{self.split} {self.metric}"
        return f"{self.kind} file of {self.model_id} for {target}"


class ReportedScore(models.Model):
    """A figure a paper reports for a model on a benchmark, shown beside the platform's own when linked."""

    benchmark_name = models.SlugField(max_length=100, help_text="The benchmark's name (any version).")
    source = models.CharField(max_length=200, help_text='e.g. "QuRe (ICML 2025), Table 3"')
    label = models.CharField(max_length=100, help_text="The model as the paper names it.")
    preference_ratio = models.FloatField(help_text="As the paper prints it, in percent.")
    position = models.PositiveIntegerField(default=0, help_text="Row order in the paper's table.")
    model = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="reported_scores"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["benchmark_name", "source", "label"], name="reported_unique_row"),
        ]
        ordering = ["benchmark_name", "source", "position"]

    def __str__(self) -> str:
        return f"{self.source}: {self.label} {self.preference_ratio} on {self.benchmark_name}"


class PreferenceModel(models.Model):
    """A human-preference model trained on one benchmark's votes (``models_zoo.preference``), versioned per benchmark.

    Not a retrieval model: it predicts, per pair, the probability that people prefer set 1. Trained by a worker
    (``worker/preference.py``) with K-fold cross-fitting over queries, so each pair's stored prediction comes from a
    fit that never saw it; ``report`` holds its held-out figures against every CIR model's own choices.
    """

    Status = JobStatus

    benchmark = models.ForeignKey(PreferenceBenchmark, on_delete=models.CASCADE, related_name="preference_models")
    version = models.PositiveIntegerField()
    method = models.CharField(max_length=32, help_text="models_zoo.preference.VERSION when trained.")
    folds = models.PositiveSmallIntegerField(default=5)
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    feature_models = models.JSONField(default=list, blank=True, help_text="ModelEntry ids whose choices are features.")
    predictions = models.BinaryField(
        null=True, blank=True, editable=False,
        help_text="Out-of-fold probability that people prefer set 1, float64 per pair in position order.",
    )
    candidates = models.JSONField(
        default=dict, blank=True,
        help_text='Unlabelled candidate pairs for prediction-powered agreement: {"p": [..], "choices": {model id: '
                  '[1|2|0, ..]}}; empty when the benchmark has none.',
    )
    report = models.JSONField(default=dict, blank=True, help_text="models_zoo.preference.evaluate.heldout_report.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["benchmark", "version"], name="prefmodel_unique_version"),
        ]
        ordering = ["benchmark", "-version"]

    def __str__(self) -> str:
        return f"preference model v{self.version} of {self.benchmark_id} ({self.status})"

    def probabilities(self) -> np.ndarray | None:
        """:attr:`predictions` as a float64 array (position order), or ``None`` before it is trained."""
        import numpy as np

        if self.predictions is None:
            return None
        return np.frombuffer(bytes(self.predictions), dtype=np.float64)
