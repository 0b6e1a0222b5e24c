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

Two more links are cut (issue 22, "steering"): the bytes and the rank order. Had a token served the file the
public ``/images/<id>`` serves, hashing both would map every token back to its image, and whoever can rerun a
model (the demo models ship with the code; a researcher holds their own) would know which model returned which
set. So :func:`reencode_campaign_images` decodes each image once at build and stores a copy re-encoded with a
per-campaign quality and a tiny perturbation keyed by the token (a few pixel values moved by one; no metadata),
which the endpoint serves: its bytes, and its pixels, differ from the public file's. A model's rank order
showed too (one model always returned the reference first): with ``Campaign.shuffle_sets`` each set's images
are shown in a random order, stored in ``shown["order"]`` (indexes into ``set_a_images`` / ``set_b_images``).
A perceptual match of the pictures still works; annotate/quality.py's steering test is the defence against
whoever makes one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
import random
from collections.abc import Iterable
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_GET

from annotate.errors import BuildError
from annotate.models import CampaignImage, Comparison
from hpbench import media

_SALT = "annotate.aliases.image"
#: Length of a token: 18 bytes of the HMAC in URL-safe base64.
TOKEN_LENGTH = 24
#: Where the image endpoint is mounted (hpbench/urls.py); also a hot route (settings.HOT_ROUTES).
URL_PREFIX = "/images/a/"
#: Media folder of the re-encoded copies: ``campaign-images/<campaign id>/<token>.<ext>``.
MEDIA_FOLDER = "campaign-images"


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


def fill_shown(*, campaign_id: int, comparisons: list[Comparison], shuffle: bool = False) -> None:
    """Set each comparison's ``shown`` payload (``{"reference": token, "a": [tokens], "b": [tokens]}``) from its
    reference image and sets, creating the campaign's missing tokens. The comparisons are not saved.

    With ``shuffle`` each set's images are listed in a random order (the OS's randomness, so no seed known to
    staff predicts it) and ``shown["order"]`` keeps it: ``{"a": [i, ...], "b": [...]}``, where ``shown["a"][j]``
    is the token of ``set_a_images[order["a"][j]]``. Without it they keep the models' rank order."""
    ids = {c.reference_image_id for c in comparisons}
    for c in comparisons:
        ids.update(c.set_a_images)
        ids.update(c.set_b_images)
    tokens = campaign_tokens(campaign_id=campaign_id, image_ids=ids)
    draw = random.SystemRandom()
    for c in comparisons:
        order_a, order_b = list(range(len(c.set_a_images))), list(range(len(c.set_b_images)))
        if shuffle:
            draw.shuffle(order_a)
            draw.shuffle(order_b)
        c.shown = {
            "reference": tokens[c.reference_image_id],
            "a": [tokens[c.set_a_images[i]] for i in order_a],
            "b": [tokens[c.set_b_images[i]] for i in order_b],
        }
        if shuffle:
            c.shown["order"] = {"a": order_a, "b": order_b}


def reencoded(data: bytes, *, key: bytes) -> tuple[bytes, str]:
    """``data`` (an image file) decoded and encoded again, as ``(bytes, extension)``: JPEG stays JPEG (quality
    87-94 by ``key``), anything else becomes PNG; one pixel in 500 (at least one) has a channel moved by one,
    where ``key`` says; no metadata is kept (EXIF, ICC profile, text chunks). The same ``data`` and ``key`` give
    the same bytes. Raises ``ValueError`` when Pillow cannot decode ``data``."""
    import numpy as np
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as opened:
            opened.load()
            kind = opened.format
            picture = opened.convert("RGBA" if "A" in opened.getbands() or "transparency" in opened.info else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not an image Pillow can decode: {exc}") from exc
    pixels = np.array(picture, dtype=np.int16)
    rng = np.random.default_rng(list(key[:16]))
    height, width, channels = pixels.shape
    n = max(1, height * width // 500)
    rows, cols = rng.integers(0, height, n), rng.integers(0, width, n)
    band = rng.integers(0, min(channels, 3), n)
    step = np.where(pixels[rows, cols, band] >= 255, -1, 1)
    pixels[rows, cols, band] += step
    picture = PILImage.fromarray(pixels.clip(0, 255).astype(np.uint8), mode=picture.mode)
    out = io.BytesIO()
    if kind == "JPEG":
        picture.save(out, format="JPEG", quality=87 + key[0] % 8)
        return out.getvalue(), ".jpg"
    picture.save(out, format="PNG", compress_level=6 + key[0] % 3)
    return out.getvalue(), ".png"


def reencode_campaign_images(*, campaign_id: int) -> int:
    """Store a re-encoded copy (:func:`reencoded`, keyed by the campaign's secret token of the image) of each of
    the campaign's images that has none yet, in the media storage under :data:`MEDIA_FOLDER`, and record it in
    ``CampaignImage.stored_name``; the image endpoint serves it. Images whose file is missing are left as they
    are (the endpoint answers 404 for them, as before). Idempotent; returns how many were stored.
    Raises :class:`BuildError` naming an image whose file Pillow cannot decode (serving it unchanged would let
    its bytes be matched)."""
    rows = (
        CampaignImage.objects.filter(campaign_id=campaign_id, stored_name="")
        .order_by("pk")
        .values_list("pk", "token", "image_id", "image__dataset__image_root", "image__file_path")
    )
    stored = 0
    for pk, token, image_id, image_root, file_path in rows.iterator(chunk_size=500):
        path = _resolved(image_root, file_path)
        if path is None:
            continue
        key = hashlib.sha256(f"{campaign_id}:{token}".encode()).digest()
        try:
            data, extension = reencoded(path.read_bytes(), key=key)
        except ValueError as exc:
            raise BuildError(f"image {image_id} ({file_path}): {exc}") from exc
        name = media.save_bytes(f"{MEDIA_FOLDER}/{int(campaign_id)}/{token}{extension}", data)
        CampaignImage.objects.filter(pk=pk).update(stored_name=name)
        stored += 1
    return stored


def _resolved(image_root: str, file_path: str) -> Path | None:
    """The image's file under its dataset's root; None when it is missing or would leave the root."""
    root = Path(image_root).resolve()
    path = (root / file_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


# --- The image endpoint -----------------------------------------------------------------------------

# token -> (file path or storage name, content type, whether it is a storage name): a token's image never changes,
# so each process remembers the answer of its one query. Bounded: cleared when full (a campaign's images are a few
# thousand).
_FILES: dict[str, tuple[str, str, bool]] = {}
_FILES_LIMIT = 50_000


def _file_of(token: str) -> tuple[str, str, bool]:
    found = _FILES.get(token)
    if found is not None:
        return found
    row = (
        CampaignImage.objects.filter(token=token)
        .values_list("stored_name", "image__dataset__image_root", "image__file_path")
        .first()
    )
    if row is None:
        raise Http404("no such image")
    stored_name, image_root, file_path = row
    if stored_name:
        # The re-encoded copy; read through the storage unless it is a local folder (then served as a file).
        local = media.storage().path(stored_name) if media.is_local() else None
        found = (local or stored_name, mimetypes.guess_type(stored_name)[0] or "application/octet-stream", not local)
    else:
        # Campaigns built before re-encoding (and comparisons filled without a build) serve the file itself.
        path = _resolved(image_root, file_path)
        if path is None:
            raise Http404("image file missing")
        found = (str(path), mimetypes.guess_type(path.name)[0] or "application/octet-stream", False)
    if len(_FILES) >= _FILES_LIMIT:
        _FILES.clear()
    _FILES[token] = found
    return found


@require_GET
def campaign_image(request: HttpRequest, token: str) -> FileResponse:
    """Serve the image behind a campaign token (404 for an unknown one): its re-encoded copy
    (:func:`reencode_campaign_images`).

    The answer names nothing but the bytes: no file name (Django's FileResponse would send it in
    Content-Disposition), no image id, no modification time. It may be cached for a year: a token's image
    never changes.
    """
    if len(token) != TOKEN_LENGTH:
        raise Http404("no such image")
    where, content_type, in_storage = _file_of(token)
    try:
        handle = media.open_stored(where) if in_storage else open(where, "rb")  # noqa: SIM115 - FileResponse closes it
    except OSError:
        _FILES.pop(token, None)
        raise Http404("image file missing") from None
    response = FileResponse(handle, content_type=content_type)
    if "Content-Disposition" in response.headers:
        del response.headers["Content-Disposition"]
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
