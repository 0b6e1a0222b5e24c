"""The benchmark catalogue: datasets, their images and queries, registered models, retrieval runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hpbench.catalog.links import validate_http_url


class Dataset(models.Model):
    class Kind(models.TextChoices):
        FASHIONIQ = "fashioniq", "FashionIQ"
        CIRR = "cirr", "CIRR"
        DEMO = "demo", "Demo (FashionIQ layout, generated)"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    image_root = models.CharField(max_length=1000, help_text="Folder the image paths are relative to.")
    shareable = models.BooleanField(
        default=False, db_default=False,
        help_text="Its images may be redistributed: researchers download them with the request files (a generated "
        "demo dataset always may).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    @property
    def protocol(self) -> str:
        """The Recall@K protocol: CIRR's, or FashionIQ's (the demo uses FashionIQ's)."""
        return "cirr" if self.kind == self.Kind.CIRR else "fashioniq"

    @property
    def images_shareable(self) -> bool:
        """Whether researchers may download its images from the platform (the demo's are generated here)."""
        return self.shareable or self.kind == self.Kind.DEMO


class Image(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    name = models.CharField(max_length=255)
    category = models.CharField(max_length=64, blank=True, default="")
    split = models.CharField(max_length=32)
    file_path = models.CharField(max_length=1000, help_text="Relative to the dataset's image root.")
    attributes = models.JSONField(
        default=dict, blank=True, help_text="Ground-truth attributes where the dataset has them (the demo)."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="image_unique_per_dataset")]
        indexes = [models.Index(fields=["dataset", "split", "category"], name="image_gallery_idx")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.name}"


class ImageListing(models.Model):
    """One place a split file lists an image: its (split, category).

    FashionIQ lists some images under two categories, and the official evaluation's gallery for a category and
    split is exactly that category's split file, so an image may have several listings; ``Image.split`` and
    ``Image.category`` keep the first. The importers write every listing; a gallery is the images listed there
    (plus images created without listings, by their own split and category:
    :func:`hpbench.catalog.selectors.gallery_images`).
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="listings")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="listings")
    split = models.CharField(max_length=32)
    category = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "split", "category"], name="image_listing_unique"),
        ]
        indexes = [models.Index(fields=["dataset", "split", "category"], name="image_listing_gallery_idx")]

    def __str__(self) -> str:
        return f"{self.image_id}:{self.category}/{self.split}"


class Query(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="queries")
    key = models.CharField(max_length=255, help_text="Stable id within the dataset (for idempotent imports).")
    split = models.CharField(max_length=32)
    category = models.CharField(max_length=64, blank=True, default="")
    reference = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Image, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    captions = models.JSONField(default=list)
    pairid = models.IntegerField(null=True, blank=True, help_text="CIRR pair id.")
    subset_members = models.JSONField(default=list, blank=True, help_text="CIRR img_set members (names).")
    extra = models.JSONField(default=dict, blank=True)
    # Steering defence (annotate/aliases.py explains the attack): a query whose model results anyone but staff
    # ever saw is never drawn into a campaign, and a query in the private pool never shows its results publicly.
    results_public_at = models.DateTimeField(
        null=True, blank=True, help_text="When its model results were first shown to someone other than staff."
    )
    reserved = models.BooleanField(
        default=False,
        db_default=False,  # rows written by code that predates the column (older migrations' states) get False
        help_text="In the private pool of campaign queries (drawn, or kept for future builds): its model results "
        "and target are never shown publicly, even after the campaigns close.",
    )

    class Meta:
        verbose_name_plural = "queries"
        constraints = [models.UniqueConstraint(fields=["dataset", "key"], name="query_unique_key")]
        indexes = [models.Index(fields=["dataset", "split", "category"], name="query_split_idx")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.key}"


class ModelEntry(models.Model):
    class Family(models.TextChoices):
        CLIP_ZEROSHOT = "clip_zeroshot", "Zero-shot CLIP"
        CLIP4CIR = "clip4cir", "CLIP4Cir"
        BLIP2_CIR = "blip2_cir", "BLIP-2 CIR (QuRe, SPRC)"
        DEMO = "demo", "Demo"
        # No model runs here: the authors uploaded its scores (hpbench/leaderboard/scorefiles.py).
        SCORES = "scores", "Scores submitted by the authors"

    name = models.SlugField(max_length=100, unique=True)
    family = models.CharField(max_length=32, choices=Family.choices)
    variant = models.CharField(max_length=64, blank=True, default="")
    checkpoint_path = models.CharField(
        max_length=1000, blank=True, default="", help_text="A server-side file or folder."
    )
    # In the media storage (hpbench.media); a worker reads it through its local cache (worker.embeddings).
    checkpoint_file = models.FileField(upload_to="checkpoints/%Y/%m/", blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="models"
    )
    is_baseline = models.BooleanField(default=False)
    is_hidden = models.BooleanField(default=False, help_text="Hidden by an admin: shown to staff only.")
    is_public = models.BooleanField(
        default=True, help_text="Researchers' submissions stay private to their owner until published."
    )
    description = models.TextField(blank=True, default="")
    link = models.URLField(blank=True, default="", validators=[validate_http_url])
    created_at = models.DateTimeField(auto_now_add=True)
    # Shown on the leaderboard beside the model; set by staff in the admin. http(s) only.
    paper_url = models.URLField(blank=True, default="", validators=[validate_http_url],
                                help_text="The paper describing the model (http or https).")
    code_url = models.URLField(blank=True, default="", validators=[validate_http_url],
                               help_text="The model's code repository (http or https).")
    licence = models.CharField(max_length=100, blank=True, default="", db_default="",
                               help_text="The licence of the model's weights or code, as its authors name it.")

    class Meta:
        verbose_name = "model"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    """The life of a job a worker runs (retrieval runs, preference scores)."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RetrievalRun(models.Model):
    Status = JobStatus

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    split = models.CharField(max_length=32, default="val")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    log = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    timings = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    topk = models.PositiveIntegerField(default=50)
    results_path = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker's claim (worker/claims.py): who runs it, when it last said so, how often a lost worker was replaced.
    claimed_by = models.CharField(max_length=255, blank=True, default="", help_text="host:pid:task of the worker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0, help_text="Times it was taken over from a lost worker.")

    class Meta:
        indexes = [models.Index(fields=["model", "dataset", "split", "status"], name="run_lookup_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk}: {self.model_id} on {self.dataset_id}/{self.split} ({self.status})"


class BaseModel(models.Model):
    """Server-side files a family builds on (a Hugging Face CLIP folder, a BERT vocabulary), registered by
    staff (admin or ``manage.py register_base_model``) and chosen by name in a researcher's config
    (``{"base_model": NAME}``): researchers never name a path on the server. The keys each family takes are
    ``hpbench.catalog.family_config.BASE_MODEL_PATH_KEYS``."""

    name = models.SlugField(max_length=100, unique=True)
    family = models.CharField(max_length=32, choices=ModelEntry.Family.choices)
    paths = models.JSONField(
        default=dict, help_text='Absolute paths on the workers, by config key, e.g. {"clip_folder": "/models/clip"}.'
    )
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "base model"
        ordering = ["family", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.family})"


class TrainingJob(models.Model):
    """One training (task ``gpu.training.train_model``), claimed, heartbeated and reaped like the other jobs
    (``worker/claims.py``): the parameters of :func:`worker.training.model_train` and the folder it writes."""

    Status = JobStatus

    family = models.CharField(max_length=32)
    dataset = models.CharField(max_length=200, help_text="Name of a registered dataset.")
    objective = models.CharField(max_length=16)
    epochs = models.PositiveIntegerField()
    out_dir = models.CharField(max_length=1000, help_text="The worker's folder it writes (and resumes from).")
    lr = models.FloatField(default=1e-4)
    batch_size = models.PositiveIntegerField(default=32)
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="", help_text="host:pid:task of the worker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0, help_text="Times it was taken over from a lost worker.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training {self.pk}: {self.family} on {self.dataset} -> {self.out_dir} ({self.status})"


class ReaperState(models.Model):
    """The reaper's own record (one row, pk 1): when it last ran (``ran_at``), when Celery beat last ran it
    (``beat_ran_at``: ``/healthz`` reports a stale one) and since when it has run without a gap longer than a
    heartbeat timeout (``up_since``: heartbeats older than that are not trusted to mean a lost worker)."""

    ran_at = models.DateTimeField(null=True, blank=True)
    beat_ran_at = models.DateTimeField(null=True, blank=True)
    up_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"reaper: last ran {self.ran_at}, by beat {self.beat_ran_at}"
