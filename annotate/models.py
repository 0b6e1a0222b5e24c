"""Annotation campaigns: pairwise comparisons of result sets, pseudonymous annotators, leases and votes.

Invariant kept by :mod:`annotate.services` on every comparison, inside the transactions that change it::

    open_slots + (assignments in state "leased") + votes_count == target_votes

so a comparison is offered only while ``open_slots > 0`` and can never collect more votes than its current
target. With fixed overlap ``target_votes`` is the campaign's ``votes_per_pair`` from the build on. With
adaptive overlap (``Campaign.adaptive_overlap``) a model comparison's target starts at ``min_votes_per_pair`` (gold
tasks keep ``votes_per_pair``); the vote that decides the
majority (``hpbench.metrics.adaptive.overlap_stop``) closes the comparison (``target_votes`` = votes + live
leases, ``stop_reason`` "decided"), and a vote that leaves it undecided with no open slot and no live lease
raises the target by one, up to ``votes_per_pair`` (``stop_reason`` "max_votes" once reached).
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from hpbench.catalog.models import Dataset, Image, ModelEntry, Query


def new_pseudonym() -> str:
    """A random public id such as ``ann_3f9c0a1b2c4d5e6f`` (reveals nothing about the person)."""
    return f"ann_{secrets.token_hex(8)}"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        CLOSED = "closed"

    class BuildStatus(models.TextChoices):
        NOT_BUILT = "not_built", "not built"
        QUEUED = "queued"
        RUNNING = "running"
        BUILT = "built"
        FAILED = "failed"

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="campaigns")
    split = models.CharField(max_length=32, default="val")
    set_size = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(50)])
    num_queries = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    votes_per_pair = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="Votes per comparison (with adaptive overlap: the most a comparison may get).",
    )
    # Fewer votes for the same answer (hpbench/metrics/adaptive.py).
    adaptive_overlap = models.BooleanField(
        default=False,
        help_text="Stop asking a comparison once its majority is decided with the confidence below, "
        "and ask undecided ones more, up to votes_per_pair.",
    )
    min_votes_per_pair = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)], help_text="Adaptive overlap: votes every comparison gets."
    )
    overlap_confidence = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.51), MaxValueValidator(0.999)],
        help_text="Adaptive overlap: posterior probability (uniform prior) that the leading side is the majority.",
    )
    pair_selection = models.CharField(
        max_length=12,
        choices=[("random", "random"), ("informative", "informative")],
        default="random",
        help_text="random: one random model pair per sampled query. informative: (query, model pair) candidates "
        "drawn with probability rising with how little the models' scores and ratings predict the outcome; "
        "num_queries is then the expected number of comparisons drawn (a Poisson draw).",
    )
    random_share = models.FloatField(
        default=0.25,
        validators=[MinValueValidator(0.01), MaxValueValidator(1.0)],
        help_text="Informative selection: share of the selection probability spread uniformly (keeps weights bounded).",
    )
    selection_rounds = models.JSONField(
        default=list, blank=True, editable=False,
        help_text='Informative selection: the rounds drawn (build, refreshes), each {"take", "expected", "pool", '
                  '"population"} (annotate.selection).',
    )
    shuffle_sets = models.BooleanField(
        default=True,
        help_text="Show each set's images in a random order (stored per comparison), not in the model's rank "
        "order, which can tell the model.",
    )
    allow_tie = models.BooleanField(default=False, help_text="Offer 'tie' besides the forced choice.")
    ask_ratings = models.BooleanField(default=False, help_text="Ask a 1-5 rating of each set.")
    ask_irrelevant = models.BooleanField(default=False, help_text="Offer 'both sets are irrelevant'.")
    instructions = models.TextField(
        blank=True, default="", help_text="Markdown shown on the first screen (HTML in it is shown as text)."
    )
    consent_text = models.TextField(
        blank=True, default="", help_text="Markdown consent annotators must accept before starting; empty: none."
    )
    contact = models.CharField(
        max_length=200, blank=True, default="",
        help_text="The researcher's contact shown on the first screen (an e-mail address or a name and address).",
    )
    estimated_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="How long the study takes, shown on the first screen; empty: estimated from the quota and the "
        "median time per vote.",
    )
    examples = models.JSONField(
        default=dict, blank=True,
        help_text="Worked example of the first screen: {reference, text, good, partial, poor} (dataset image ids; "
        "set with annotate.onboarding.campaign_examples_set).",
    )
    gold_feedback = models.BooleanField(
        default=False, help_text="Tell annotators whether their answer to a gold (practice) task was correct."
    )
    min_vote_ms = models.PositiveIntegerField(
        default=1500, help_text="Votes given faster than this (milliseconds on screen) are flagged too_fast; 0 = none."
    )
    gold_share = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.9)],
        help_text="Share of all comparisons that are gold tasks (0 to 0.9).",
    )
    per_person_quota = models.PositiveIntegerField(default=25, help_text="Votes per annotator; 0 = no limit.")
    max_votes_per_model_pair = models.PositiveSmallIntegerField(
        default=10,
        help_text="Most comparisons between the same two models one annotator is given (gold tasks aside), so one "
        "identity cannot carry a pair's verdicts; 0 = no limit.",
    )
    completion_code = models.CharField(max_length=64, blank=True, default="")
    completion_url = models.URLField(blank=True, default="")
    completion_code_per_annotator = models.BooleanField(
        default=True,
        help_text="Show each annotator their own code (the completion code plus a part derived from the annotator), "
        "listed per annotator for staff to verify.",
    )
    # Crowd entry guards (annotate/crowd.py).
    crowd_study_ids = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Prolific STUDY_ID(s) or MTurk hitId(s) this campaign accepts, comma-separated; empty accepts any.",
    )
    require_crowd_session = models.BooleanField(
        default=True,
        help_text="Crowd links must carry STUDY_ID and SESSION_ID (Prolific) or hitId and assignmentId (MTurk).",
    )
    new_annotators_per_hour = models.PositiveIntegerField(
        default=1000, help_text="New crowd identities accepted per hour; 0 = no limit."
    )
    gold_min_accuracy = models.FloatField(default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    gold_min_votes = models.PositiveSmallIntegerField(
        default=3, help_text="Gold votes needed before an annotator can be flagged."
    )
    lease_seconds = models.PositiveIntegerField(default=600, validators=[MinValueValidator(10)])
    seed = models.IntegerField(default=0, help_text="Seed of the query sample, pairings and placements.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    build_status = models.CharField(max_length=12, choices=BuildStatus.choices, default=BuildStatus.NOT_BUILT)
    build_progress = models.FloatField(default=0.0)
    build_error = models.TextField(blank=True, default="")
    # The build's claim (worker/claims.py): its worker, that worker's last sign of life, takeovers from lost ones.
    build_started_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="", help_text="host:pid:task of the worker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0, help_text="Times it was taken over from a lost worker.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    pool_models = models.ManyToManyField(
        ModelEntry, blank=True, related_name="pool_campaigns",
        help_text="Models that only make sets: drawn into pairs like the compared models, not scored on the "
                  "board, so that the board's models keep many pairs none of whose sets they made (held-out pairs).",
    )
    # Last: the name shadows the ``models`` module for the rest of the class body.
    models = models.ManyToManyField(
        ModelEntry, related_name="campaigns", help_text="The models whose result sets are compared."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        """Adaptive overlap needs ``1 <= min_votes_per_pair <= votes_per_pair`` (``ValidationError`` otherwise)."""
        from django.core.exceptions import ValidationError

        super().clean()
        if self.adaptive_overlap and self.min_votes_per_pair > self.votes_per_pair:
            raise ValidationError(
                {"min_votes_per_pair": f"must be at most votes_per_pair ({self.votes_per_pair}) with adaptive overlap"}
            )


class Comparison(models.Model):
    """Two result sets for one query. ``a``/``b`` are storage labels; the screen shows left/right."""

    # Every lease rewrites its comparison's row (open_slots) along with every index on the table, so the table
    # keeps only the indexes something reads: campaign lookups use comparison_unique_per_pair's prefix, and
    # the rare deletes of an image or model entry may scan (they are protected or cascade through queries).
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="comparisons", db_index=False)
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="+")
    # Denormalised so the hot path never joins Query: the reference image and the text shown.
    reference_image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+", db_index=False)
    text = models.TextField()
    position = models.BigIntegerField(help_text="Random serving order (lower first).")
    set_a_images = models.JSONField()
    set_b_images = models.JSONField()
    set_a_model = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    set_b_model = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # What annotators are shown: {"reference": token, "a": [tokens], "b": [tokens]}, the images' per-campaign
    # opaque tokens (annotate/aliases.py), filled at build; the next-task statements read it with the row.
    shown = models.JSONField(default=dict, blank=True)
    is_gold = models.BooleanField(default=False)
    shows_reference = models.BooleanField(
        default=False, help_text="A set contains the unchanged reference image (flagged at build; never shown)."
    )
    gold_answer = models.CharField(max_length=1, blank=True, default="", help_text="'a' or 'b'; never shown.")
    seed = models.BigIntegerField(default=0)
    votes_count = models.PositiveIntegerField(default=0)
    open_slots = models.IntegerField(help_text="target_votes - votes - live leases")
    target_votes = models.PositiveSmallIntegerField(default=0, help_text="Votes this comparison asks for now.")
    # Counted by the vote path of adaptive campaigns only (votes of flagged annotators count for neither side).
    votes_a = models.PositiveIntegerField(default=0)
    votes_b = models.PositiveIntegerField(default=0)
    stop_reason = models.CharField(
        max_length=10, blank=True, default="", help_text="Adaptive overlap: 'decided' or 'max_votes' once stopped."
    )
    selection_weight = models.FloatField(
        default=1.0,
        help_text="Informative pair selection: the design weight relative to uniform "
                  "(hpbench.metrics.adaptive.sequential_weights, set after every round); 1 for random pairs.",
    )
    selection_round = models.PositiveSmallIntegerField(
        default=0, help_text="Informative pair selection: the round that drew it (1 = the build); 0 otherwise."
    )
    selection_pi = models.FloatField(
        null=True, blank=True, help_text="Informative pair selection: its inclusion probability in its round."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One gold task per query; model comparisons: one per (query, ordered model pair). Random builds
            # use each query once; informative selection may compare several model pairs on one query.
            models.UniqueConstraint(
                fields=["campaign", "query"], condition=Q(is_gold=True), name="comparison_unique_gold_per_query"
            ),
            # Not partial, so its (campaign, ...) prefix serves every campaign lookup (gold rows' NULL models
            # never conflict here).
            models.UniqueConstraint(
                fields=["campaign", "query", "set_a_model", "set_b_model"], name="comparison_unique_per_pair"
            ),
            models.CheckConstraint(condition=Q(open_slots__gte=0), name="comparison_open_slots_nonnegative"),
        ]
        indexes = [
            # The pick: first comparison in serving order that still has room.
            models.Index(fields=["campaign", "position"], condition=Q(open_slots__gt=0), name="comparison_pool_idx"),
        ]
        ordering = ["campaign", "position"]

    def __str__(self) -> str:
        return f"comparison {self.pk} ({self.campaign_id})"


class CampaignImage(models.Model):
    """An image as one campaign's annotators see it: under an opaque token (annotate/aliases.py)."""

    # Looked up by token (its unique index) and by campaign through campaign_image_once's prefix.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=32, unique=True)
    stored_name = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Media name of the re-encoded copy served to annotators (empty: the file itself, campaigns "
        "built before re-encoding).",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "image"], name="campaign_image_once")]

    def __str__(self) -> str:
        return f"image {self.image_id} of campaign {self.campaign_id}"


class SelectionPredictor(models.Model):
    """A learned predictor's probabilities for a campaign's uncompared candidates, which informative selection
    uses as p̂ (``annotate.selection.campaign_learned_preferences``). Written by the leaderboard when a
    preference model trained on a benchmark frozen from the campaign finishes; the newest is used."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="selection_predictors")
    label = models.CharField(max_length=200, help_text='What made the predictions ("preference model v2 on ...").')
    keys = models.JSONField(default=list, help_text="[query id, model pk, model pk] per candidate, lower pk first.")
    p = models.JSONField(default=list, help_text="Probability that people prefer the lower-pk model's set.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.label} (campaign {self.campaign_id})"


class Annotator(models.Model):
    """A pseudonymous person within one campaign (crowd worker or account holder)."""

    class Source(models.TextChoices):
        ACCOUNT = "account"
        PROLIFIC = "prolific"
        MTURK = "mturk"

    class Review(models.TextChoices):
        NONE = "", "not reviewed"
        APPROVED = "approved"
        EXCLUDED = "excluded"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="annotators")
    pseudonym = models.CharField(max_length=32, unique=True, default=new_pseudonym)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    external_id_hash = models.CharField(
        max_length=64, blank=True, default="", help_text="HMAC of the crowd id; the id itself is never stored."
    )
    study_id = models.CharField(max_length=100, blank=True, default="")
    session_id = models.CharField(max_length=100, blank=True, default="")
    assignment_id = models.CharField(max_length=100, blank=True, default="")
    hit_id = models.CharField(max_length=100, blank=True, default="")
    submit_to = models.CharField(max_length=300, blank=True, default="")
    votes_count = models.PositiveIntegerField(default=0)
    flagged = models.BooleanField(default=False, help_text="Under the gold accuracy bar: votes excluded.")
    onboarded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the annotator read the first screen (and accepted the consent)."
    )
    start_position = models.BigIntegerField(
        default=0, help_text="Where this annotator's scan of the task pool starts (serving order wraps around)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Staff's decision on the monitoring page (annotate.services.review.annotator_review); quality_refresh keeps it.
    review = models.CharField(
        max_length=8,
        choices=Review.choices,
        blank=True,
        default=Review.NONE,
        help_text="Staff's decision: approved (never flagged) or excluded (always flagged); empty: the gold check.",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "source", "external_id_hash"],
                condition=~Q(external_id_hash=""),
                name="annotator_unique_crowd_id",
            ),
            models.UniqueConstraint(
                fields=["campaign", "user"], condition=Q(user__isnull=False), name="annotator_unique_user"
            ),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.pseudonym


class Assignment(models.Model):
    """A lease on one comparison for one annotator, with the left/right placement it was shown."""

    class State(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    lease = models.UUIDField(unique=True, default=uuid.uuid4)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    # Looked up through assignment_once_per_annotator's prefix: one index fewer to write per lease and vote.
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    left_is_a = models.BooleanField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.LEASED)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when next-task first serves the lease as the task on screen (a preloaded one is leased earlier):
    # the server's bound on the time a vote took.
    shown_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "comparison"], name="assignment_once_per_annotator"),
        ]
        indexes = [
            models.Index(fields=["annotator", "id"], condition=Q(state="leased"), name="assignment_live_idx"),
            models.Index(fields=["campaign", "expires_at"], condition=Q(state="leased"), name="assignment_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"lease {self.lease} ({self.state})"


def counted_votes_q(prefix: str = "") -> Q:
    """The rule for a vote that counts (benchmark freeze, arena ratings, exports by default): not excluded by
    quality control, not given by a flagged annotator, and not given faster than the campaign's ``min_vote_ms``.
    ``prefix`` is the path to the vote from another model, e.g. ``"votes__"`` from a Comparison. Whether gold
    comparisons count is each reader's choice."""
    return Q(**{f"{prefix}excluded": False, f"{prefix}annotator__flagged": False, f"{prefix}too_fast": False})


class VoteQuerySet(models.QuerySet["Vote"]):
    def counted(self) -> VoteQuerySet:
        """The votes that count (:func:`counted_votes_q`)."""
        return self.filter(counted_votes_q())


class Vote(models.Model):
    class Choice(models.TextChoices):
        A = "a"
        B = "b"
        TIE = "tie"

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="vote")
    # vote_comparison_idx and vote_once_per_annotator serve these lookups.
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="votes", db_index=False)
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="votes", db_index=False)
    choice = models.CharField(max_length=3, choices=Choice.choices)
    first_choice = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",  # the vote path's INSERT leaves it out
        help_text="The answer first given, where it was changed later (empty: never changed); gold accuracy counts it.",
    )
    rating_a = models.PositiveSmallIntegerField(null=True, blank=True)
    rating_b = models.PositiveSmallIntegerField(null=True, blank=True)
    irrelevant = models.BooleanField(default=False)
    time_ms = models.PositiveIntegerField(null=True, blank=True)
    too_fast = models.BooleanField(default=False, help_text="Given faster than the campaign's min_vote_ms.")
    idempotency_key = models.CharField(max_length=100, unique=True)
    excluded = models.BooleanField(default=False, help_text="Set by quality control; kept but not counted.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = VoteQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "comparison"], name="vote_once_per_annotator"),
            models.CheckConstraint(
                condition=Q(rating_a__isnull=True) | Q(rating_a__gte=1, rating_a__lte=5), name="vote_rating_a_range"
            ),
            models.CheckConstraint(
                condition=Q(rating_b__isnull=True) | Q(rating_b__gte=1, rating_b__lte=5), name="vote_rating_b_range"
            ),
        ]
        indexes = [models.Index(fields=["comparison"], name="vote_comparison_idx")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"vote {self.pk}: {self.choice}"
