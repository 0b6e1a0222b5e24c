"""Per-campaign opaque image URLs: what annotators load instead of the public ``/images/<id>``.

The catalogue's pages and API name images by their public id, next to each model's results. Had a task shown
those ids, an annotator could read which model made each set (and spot the gold task: the set no model
returned). So a campaign shows every image under a token (:func:`image_token`): 144 bits of an HMAC of the
campaign and image ids under ``SECRET_KEY``, which nobody without the key can derive from the image id or turn
back into it. The same image has a different token in another campaign; gold tasks' images get theirs the
same way as every other set's.

Tokens are computed at campaign build and stored twice: in :class:`annotate.models.CampaignImage` (token →
image, read by the image endpoint, :func:`campaign_image`) and in each comparison's ``shown`` payload, which
the next-task statements read with the comparison itself, so the hot path makes no extra query. Stored tokens
are never recomputed: rotating ``SECRET_KEY`` leaves a built campaign's URLs working.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Iterable
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_GET

from annotate.models import CampaignImage, Comparison

_SALT = "annotate.aliases.image"
#: Length of a token: 18 bytes of the HMAC in URL-safe base64.
TOKEN_LENGTH = 24
#: Where the image endpoint is mounted (hpbench/urls.py); also a hot route (settings.HOT_ROUTES).
URL_PREFIX = "/images/a/"


def image_token(*, campaign_id: int, image_id: int) -> str:
    """The opaque token of image ``image_id`` in campaign ``campaign_id`` (24 URL-safe characters)."""
    digest = salted_hmac(_SALT, f"{int(campaign_id)}:{int(image_id)}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def image_url(token: str) -> str:
    """The URL an annotator's page loads the image of ``token`` from."""
    return f"{URL_PREFIX}{token}"


def campaign_tokens(*, campaign_id: int, image_ids: Iterable[int]) -> dict[int, str]:
    """``{image id: token}`` for these images of the campaign: the stored token where there is one, else a new
    one, stored now (idempotent; concurrent builds of one campaign agree, tokens being derived)."""
    wanted = set(image_ids)
    known = dict(
        CampaignImage.objects.filter(campaign_id=campaign_id, image_id__in=wanted).values_list("image_id", "token")
    )
    missing = [
        CampaignImage(campaign_id=campaign_id, image_id=i, token=image_token(campaign_id=campaign_id, image_id=i))
        for i in sorted(wanted - known.keys())
    ]
    if missing:
        CampaignImage.objects.bulk_create(missing, batch_size=2000, ignore_conflicts=True)
        known.update(
            CampaignImage.objects.filter(
                campaign_id=campaign_id, image_id__in=[row.image_id for row in missing]
            ).values_list("image_id", "token")
        )
    return known


def fill_shown(*, campaign_id: int, comparisons: list[Comparison]) -> None:
    """Set each comparison's ``shown`` payload (``{"reference": token, "a": [tokens], "b": [tokens]}``) from its
    reference image and sets, creating the campaign's missing tokens. The comparisons are not saved."""
    ids = {c.reference_image_id for c in comparisons}
    for c in comparisons:
        ids.update(c.set_a_images)
        ids.update(c.set_b_images)
    tokens = campaign_tokens(campaign_id=campaign_id, image_ids=ids)
    for c in comparisons:
        c.shown = {
            "reference": tokens[c.reference_image_id],
            "a": [tokens[i] for i in c.set_a_images],
            "b": [tokens[i] for i in c.set_b_images],
        }


# --- The image endpoint -----------------------------------------------------------------------------

# token -> (file path, content type): a token's image never changes, so each process remembers the answer of its
# one query. Bounded: cleared when full (a campaign's images are a few thousand).
_FILES: dict[str, tuple[str, str]] = {}
_FILES_LIMIT = 50_000


def _file_of(token: str) -> tuple[str, str]:
    found = _FILES.get(token)
    if found is not None:
        return found
    row = (
        CampaignImage.objects.filter(token=token)
        .values_list("image__dataset__image_root", "image__file_path")
        .first()
    )
    if row is None:
        raise Http404("no such image")
    root = Path(row[0]).resolve()
    path = (root / row[1]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404("image file missing")
    found = (str(path), mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    if len(_FILES) >= _FILES_LIMIT:
        _FILES.clear()
    _FILES[token] = found
    return found


@require_GET
def campaign_image(request: HttpRequest, token: str) -> FileResponse:
    """Serve the image behind a campaign token (404 for an unknown one).

    The answer names nothing but the bytes: no file name (Django's FileResponse would send it in
    Content-Disposition), no image id, no modification time. It may be cached for a year: a token's image
    never changes.
    """
    if len(token) != TOKEN_LENGTH:
        raise Http404("no such image")
    path, content_type = _file_of(token)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
    except OSError:
        _FILES.pop(token, None)
        raise Http404("image file missing") from None
    response = FileResponse(handle, content_type=content_type)
    if "Content-Disposition" in response.headers:
        del response.headers["Content-Disposition"]
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
