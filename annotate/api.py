"""The annotation JSON API (mounted at /api/annotate/): crowd entry, next task, votes, staff figures.

Annotator-facing answers never name models, comparisons or gold tasks: a task is a lease id, image
URLs (opaque per-campaign tokens, ``annotate.aliases``, never the catalogue's image ids) and the query
text, with the two sets labelled only "left" and "right". Writes require the CSRF
token for cookie callers (crowd workers included); token-authenticated clients are exempt, as in DRF.
Who a crowd worker is comes from a signed cookie (``annotate.identity``), not from a session.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate import crowd, identity, onboarding, quality, selectors, undo
from annotate.errors import AnnotateError, NoAnnotator
from annotate.models import Campaign
from annotate.services.display import image_url
from annotate.services.entry import annotator_for_request
from annotate.services.next_task import CampaignView, NextResult, TaskView, assignment_next
from annotate.services.votes import Caller, vote_record
from hpbench.catalog.models import Dataset
from hpbench.parsers import JSONParser

_FASHION = {Dataset.Kind.FASHIONIQ, Dataset.Kind.DEMO}


class _JSONAnswers(DefaultContentNegotiation):
    """The annotation endpoints answer JSON whatever the Accept header asks (no negotiation on the hot path)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _AnnotatorAPIView(APIView):
    """Anyone may call; the view itself checks which annotator the browser (or user) acts as."""

    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONAnswers

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # DRF checks CSRF only for logged-in session users; crowd workers act by cookie too.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not isinstance(
            request.successful_authenticator, TokenAuthentication
        ):
            SessionAuthentication().enforce_csrf(request)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, AnnotateError):
            return Response({"detail": exc.detail}, status=exc.status)
        return super().handle_exception(exc)


def _json(payload: dict, status: int = 200) -> JsonResponse:
    """The hot endpoints' answer: the JSON DRF's renderer would write (compact, UTF-8), without its template
    response machinery (a plain HttpResponse is a valid APIView answer)."""
    return JsonResponse(payload, status=status, json_dumps_params={"separators": (",", ":"), "ensure_ascii": False})


def _progress(done: int, quota: int | None) -> dict:
    return {"done": done, "quota": quota}


def _sets(task: TaskView) -> dict:
    n_left, n_right = len(task.left), len(task.right)
    return {
        "left": [
            {"url": image_url(i), "alt": f"Left set, image {n + 1} of {n_left}"}
            for n, i in enumerate(task.left)
        ],
        "right": [
            {"url": image_url(i), "alt": f"Right set, image {n + 1} of {n_right}"}
            for n, i in enumerate(task.right)
        ],
    }


def _reference(task: TaskView, campaign: CampaignView) -> dict:
    alt = "Reference garment" if campaign.dataset_kind in _FASHION else "Reference image"
    return {"url": image_url(task.reference), "alt": alt}


def next_payload(result: NextResult) -> dict:
    """The JSON answer of the next-task endpoint (see the module docstring for what it never holds)."""
    campaign = result.campaign
    progress = _progress(result.done, result.quota)
    if result.task is None:
        quota_reached = result.quota is not None and result.done >= result.quota
        return {
            "task": None,
            "done": True,
            "reason": "quota_reached" if quota_reached else "no_tasks_left",
            "progress": progress,
            # Someone who answered nothing (the study filled up first) gets no completion code.
            "completion": {"code": result.completion_code, "url": campaign.completion_url or None}
            if result.done > 0
            else None,
        }
    task = result.task
    preview = result.preview
    return {
        "task": {
            "lease": str(task.lease),
            "reference": _reference(task, campaign),
            "text": task.text,
            "sets": _sets(task),
            "options": {
                "tie": campaign.allow_tie,
                "ratings": campaign.ask_ratings,
                "irrelevant": campaign.ask_irrelevant,
            },
            "expires_at": task.expires_at.isoformat(),
        },
        "done": False,
        "progress": progress,
        "next": None
        if preview is None
        else {
            "reference": _reference(preview, campaign),
            "text": preview.text,
            "sets": _sets(preview),
        },
    }


def _image(name: str, **kwargs):
    return inline_serializer(name, {"url": serializers.CharField(), "alt": serializers.CharField()}, **kwargs)


_PROGRESS = inline_serializer(
    "AnnotateProgress", {"done": serializers.IntegerField(), "quota": serializers.IntegerField(allow_null=True)}
)
_NEXT_RESPONSE = inline_serializer(
    "AnnotateNext",
    {
        "task": inline_serializer(
            "AnnotateTask",
            {
                "lease": serializers.UUIDField(),
                "reference": _image("AnnotateReference"),
                "text": serializers.CharField(),
                "sets": inline_serializer(
                    "AnnotateSets",
                    {"left": _image("AnnotateSetImage", many=True),
                     "right": _image("AnnotateSetImageRight", many=True)},
                ),
                "options": inline_serializer(
                    "AnnotateOptions",
                    {
                        "tie": serializers.BooleanField(),
                        "ratings": serializers.BooleanField(),
                        "irrelevant": serializers.BooleanField(),
                    },
                ),
                "expires_at": serializers.DateTimeField(),
            },
            allow_null=True,
        ),
        "done": serializers.BooleanField(),
        "reason": serializers.ChoiceField(choices=["quota_reached", "no_tasks_left"], required=False,
                                          help_text="Why there is no task (only when ``done``)."),
        "progress": _PROGRESS,
        "next": serializers.DictField(
            allow_null=True, required=False, help_text="Preview of the following task (reference, text, sets)."
        ),
        "completion": inline_serializer(
            "AnnotateCompletion",
            {"code": serializers.CharField(), "url": serializers.CharField(allow_null=True)},
            required=False,
            allow_null=True,
            help_text="Only when ``done``: null for someone who answered nothing.",
        ),
    },
)
_DETAIL = inline_serializer("AnnotateDetail", {"detail": serializers.CharField()})


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CampaignEnterView(_AnnotatorAPIView):
    @extend_schema(
        summary="Enter a campaign (crowd link or logged-in user); sets the annotator and CSRF cookies",
        description="A crowd link must carry the study and session (Prolific STUDY_ID and SESSION_ID, MTurk hitId "
        "and assignmentId) where the campaign requires them, and a study the campaign accepts (403 otherwise). "
        "New crowd identities are rate-limited per client IP and per campaign (429).",
        parameters=[
            OpenApiParameter(p, OpenApiTypes.STR, required=False)
            for p in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId", "turkSubmitTo")
        ],
        responses={
            200: inline_serializer("AnnotateEnter", {"annotator": serializers.CharField(), "progress": _PROGRESS}),
            403: _DETAIL,
            404: _DETAIL,
            429: _DETAIL,
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        campaign = selectors.campaign_get(slug=slug)
        annotator = annotator_for_request(request, campaign)
        return Response(
            {
                "annotator": annotator.pseudonym,
                "progress": _progress(annotator.votes_count, campaign.per_person_quota or None),
            }
        )


class NextTaskView(_AnnotatorAPIView):
    @extend_schema(
        summary="The caller's current task (resumed or newly leased) and a preview of the following one",
        request=None,
        responses={200: _NEXT_RESPONSE, 403: _DETAIL, 409: _DETAIL},
    )
    def post(self, request: Request, slug: str) -> JsonResponse:
        annotator_id = identity.remembered(request).get(slug)
        if annotator_id is None:
            if not request.user.is_authenticated:
                raise NoAnnotator("no annotator in this browser: open the campaign's page (or its crowd link) first")
            annotator_id = annotator_for_request(request, selectors.campaign_get(slug=slug)).pk
        try:
            result = assignment_next(annotator_id=annotator_id, campaign_slug=slug)
        except NoAnnotator:
            if not request.user.is_authenticated:
                raise
            annotator_id = annotator_for_request(request, selectors.campaign_get(slug=slug)).pk
            result = assignment_next(annotator_id=annotator_id, campaign_slug=slug)
        return _json(next_payload(result))


class VoteInput(serializers.Serializer):
    """Documents the vote body; validation itself is the service's (one place, with clear messages)."""

    lease = serializers.UUIDField()
    choice = serializers.ChoiceField(
        choices=["left", "right", "tie"], allow_null=True, required=False,
        help_text="Null (or left out) only with irrelevant: true, \"both sets are irrelevant\" as the whole answer.",
    )
    rating_left = serializers.IntegerField(min_value=1, max_value=5, allow_null=True, required=False)
    rating_right = serializers.IntegerField(min_value=1, max_value=5, allow_null=True, required=False)
    irrelevant = serializers.BooleanField(required=False, default=False)
    time_ms = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    idempotency_key = serializers.CharField(max_length=100)


class VoteView(_AnnotatorAPIView):
    @extend_schema(
        summary="Record the answer to a leased task (exactly once per idempotency key)",
        request={"application/json": VoteInput},  # a form is read too, but its values are strings: JSON is the API
        responses={
            201: inline_serializer("AnnotateVoteOk", {"ok": serializers.BooleanField()}),
            200: inline_serializer("AnnotateVoteReplay", {"ok": serializers.BooleanField()}),
            400: _DETAIL,
            403: _DETAIL,
            404: _DETAIL,
            409: _DETAIL,
            410: _DETAIL,
        },
    )
    def post(self, request: Request) -> HttpResponse:  # DRF's Response for a refusal, else _json's
        data = request.data
        if not isinstance(data, dict):
            return Response({"detail": "send a JSON object"}, status=400)
        # "Both sets are irrelevant" (irrelevant: true) is a whole answer: no choice needed.
        required = ("lease", "idempotency_key") + (() if data.get("irrelevant") is True else ("choice",))
        missing = [name for name in required if data.get(name) in (None, "")]
        if missing:
            return Response({"detail": f"missing field(s): {', '.join(missing)}"}, status=400)
        caller = Caller(
            annotator_ids=frozenset(identity.remembered(request).values()),
            user_id=request.user.pk if request.user.is_authenticated else None,
        )
        if not caller.annotator_ids and caller.user_id is None:
            raise NoAnnotator("no annotator in this browser: open the campaign's page (or its crowd link) first")
        result = self.record(
            lease=data["lease"],
            caller=caller,
            choice=data.get("choice"),
            idempotency_key=data["idempotency_key"],
            rating_left=data.get("rating_left"),
            rating_right=data.get("rating_right"),
            irrelevant=data.get("irrelevant", False),
            time_ms=data.get("time_ms"),
        )
        body: dict = {"ok": True}
        if result.correct is not None:  # the campaign gives feedback on its practice (gold) tasks
            body["feedback"] = {"correct": result.correct}
        return _json(body, status=201 if result.created else 200)

    record = staticmethod(vote_record)


class VoteReplaceView(VoteView):
    """Change one's last answer while its task's lease is live: the stored vote is replaced, not added."""

    @extend_schema(
        summary="Replace the answer to the caller's last answered task (while its lease is live)",
        request=VoteInput,
        responses={
            201: inline_serializer("AnnotateReplaceOk", {"ok": serializers.BooleanField()}),
            200: inline_serializer("AnnotateReplaceReplay", {"ok": serializers.BooleanField()}),
            400: _DETAIL,
            403: _DETAIL,
            404: _DETAIL,
            409: _DETAIL,
            410: _DETAIL,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        return super().post(request)

    record = staticmethod(undo.vote_replace)


class OnboardedView(_AnnotatorAPIView):
    parser_classes = [JSONParser]  # a JSON object whose consent is a boolean (a form's would be a string)

    @extend_schema(
        summary="Record that the caller read the campaign's first screen (and accepted its consent, if any)",
        request=inline_serializer("AnnotateOnboard", {"consent": serializers.BooleanField(required=False)}),
        responses={200: inline_serializer("AnnotateOnboarded", {"ok": serializers.BooleanField()}), 403: _DETAIL},
    )
    def post(self, request: Request, slug: str) -> JsonResponse:
        data = request.data  # a JSON object, or an empty body
        consent = data.get("consent", False) if isinstance(data, dict) else None
        if type(consent) is not bool:  # "yes", 1, null ... must not pass for (or silently drop) a consent
            return _json({"detail": "consent: expected true or false in a JSON object"}, status=400)
        campaign = selectors.campaign_get(slug=slug)
        annotator = annotator_for_request(request, campaign)
        onboarding.annotator_onboard(annotator=annotator, campaign=campaign, consent=consent)
        return _json({"ok": True})


# --- Staff --------------------------------------------------------------------------------------


def _campaign_summary(campaign: Campaign) -> dict:
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "dataset": campaign.dataset.name,
        "split": campaign.split,
        "status": campaign.status,
        "build_status": campaign.build_status,
        "build_progress": campaign.build_progress,
        "votes_per_pair": campaign.votes_per_pair,
        "adaptive_overlap": campaign.adaptive_overlap,
        "min_votes_per_pair": campaign.min_votes_per_pair,
        "overlap_confidence": campaign.overlap_confidence,
        "pair_selection": campaign.pair_selection,
        "random_share": campaign.random_share,
        "per_person_quota": campaign.per_person_quota,
        "max_votes_per_model_pair": campaign.max_votes_per_model_pair,
    }


def _campaign_fields() -> dict:
    """Documents :func:`_campaign_summary` (staff answers; other keys may follow)."""
    return {
        "slug": serializers.CharField(), "name": serializers.CharField(), "dataset": serializers.CharField(),
        "split": serializers.CharField(), "status": serializers.CharField(), "build_status": serializers.CharField(),
        "build_progress": serializers.FloatField(), "votes_per_pair": serializers.IntegerField(),
        "per_person_quota": serializers.IntegerField(help_text="0 = no limit"),
    }


_CAMPAIGNS = inline_serializer("AnnotateCampaigns", {"results": serializers.ListField(child=inline_serializer(
    "AnnotateCampaignProgress", {**_campaign_fields(), "comparisons": serializers.IntegerField(),
                                 "complete_comparisons": serializers.IntegerField(),
                                 "votes": serializers.IntegerField(), "annotators": serializers.IntegerField()}))})
_CAMPAIGN_DETAIL = inline_serializer("AnnotateCampaignDetail", {
    **_campaign_fields(), "models": serializers.ListField(child=serializers.CharField()),
    "figures": serializers.DictField(help_text="Progress and reliability (annotate.quality.campaign_figures)."),
    "annotators": serializers.ListField(child=serializers.DictField(), help_text="Per annotator: pseudonym, votes, "
                                        "gold accuracy, agreement, median time (and completion code, if per person).")})


class CampaignListView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(summary="Campaigns with their progress (staff)", operation_id="annotate_campaigns_list",
                   responses={200: _CAMPAIGNS})
    def get(self, request: Request) -> Response:
        rows = []
        for campaign in selectors.campaign_list_with_progress():
            row = _campaign_summary(campaign)
            row.update(
                comparisons=campaign.n_comparisons,
                complete_comparisons=campaign.n_complete,
                votes=campaign.n_votes,
                annotators=campaign.n_annotators,
            )
            rows.append(row)
        return Response({"results": rows})


class CampaignDetailView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="One campaign's progress, quality figures and annotators (staff)",
        responses={200: _CAMPAIGN_DETAIL, 404: _DETAIL},
    )
    def get(self, request: Request, slug: str) -> Response:
        try:
            campaign = selectors.campaign_get(slug=slug)
        except AnnotateError as exc:
            return Response({"detail": exc.detail}, status=exc.status)
        body = _campaign_summary(campaign)
        body["models"] = list(campaign.models.values_list("name", flat=True))
        body["figures"] = quality.campaign_figures(campaign=campaign)
        annotators = []
        for figures in quality.annotator_figures(campaign=campaign):
            row = figures.as_dict()
            if campaign.completion_code_per_annotator:  # staff verify the codes annotators hand in
                row["completion_code"] = crowd.completion_code_for(
                    base=campaign.completion_code, campaign_id=campaign.pk, annotator_id=figures.annotator_id
                )
            annotators.append(row)
        body["annotators"] = annotators
        return Response(body)
