"""Per-campaign opaque image URLs (annotate/aliases.py): tokens, the comparisons' shown payload, the endpoint."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from django.conf import settings
from PIL import Image as PILImage

from annotate.aliases import image_token, reencode_campaign_images, reencoded
from annotate.models import CampaignImage, Comparison
from hpbench.handlers import Application
from tests.annotate.conftest import make_campaign, make_world
from tests.annotate.test_anonymity import _worlds_files

pytestmark = pytest.mark.django_db


def test_an_opaque_image_url_serves_the_bytes_and_names_nothing(tmp_path, client):
    world = make_world()
    _worlds_files(world, tmp_path)
    campaign = make_campaign(world)
    alias = CampaignImage.objects.filter(campaign=campaign).select_related("image").first()
    response = client.get(f"/images/a/{alias.token}")
    assert response.status_code == 200
    served = b"".join(response.streaming_content)
    original = (tmp_path / alias.image.file_path).read_bytes()
    # A re-encoded copy: other bytes (no hash matches the public image) and other pixels, the same picture.
    assert hashlib.sha256(served).digest() != hashlib.sha256(original).digest()
    assert response["Content-Type"] == "image/png"
    shown, source = (np.asarray(PILImage.open(io.BytesIO(b)).convert("RGB"), dtype=int) for b in (served, original))
    assert shown.shape == source.shape and 0 < np.abs(shown - source).sum() and np.abs(shown - source).max() == 1
    assert alias.image.name not in served.decode("latin-1")
    assert "immutable" in response["Cache-Control"]
    # Bytes, length, type and the site-wide security headers: no file name, no id, no date.
    assert {name.lower() for name in response.headers} <= {
        "content-type", "content-length", "cache-control", "x-frame-options", "x-content-type-options",
        "referrer-policy", "cross-origin-opener-policy", "vary", "content-security-policy",
    }, response.headers
    assert not any(alias.image.name in value for value in response.headers.values())
    assert client.get(f"/images/a/{'A' * 24}").status_code == 404
    assert client.get("/images/a/short").status_code == 404


def test_the_same_image_has_different_tokens_in_two_campaigns():
    world = make_world()
    first, second = make_campaign(world), make_campaign(world)
    a = dict(CampaignImage.objects.filter(campaign=first).values_list("image_id", "token"))
    b = dict(CampaignImage.objects.filter(campaign=second).values_list("image_id", "token"))
    shared = a.keys() & b.keys()
    assert shared and all(a[i] != b[i] for i in shared)
    # Every image a comparison shows has its token; queries' own rows are untouched.
    for c in Comparison.objects.filter(campaign=first):
        assert c.shown["reference"] == a[c.reference_image_id]
        for side in ("a", "b"):  # in the order shown (test_anonymity checks the order)
            images = getattr(c, f"set_{side}_images")
            assert c.shown[side] == [a[images[j]] for j in c.shown["order"][side]]


def test_a_token_is_derived_from_the_secret_key_and_stored_ones_are_kept(world):
    campaign = make_campaign(world)
    stored = CampaignImage.objects.filter(campaign=campaign).first()
    assert stored.token == image_token(campaign_id=campaign.pk, image_id=stored.image_id)
    assert len(stored.token) == 24 and str(stored.image_id) != stored.token
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "SECRET_KEY", "another-secret-key-of-more-than-32-characters")
        assert image_token(campaign_id=campaign.pk, image_id=stored.image_id) != stored.token


def test_the_images_of_tasks_take_the_short_stack():
    application = Application()
    assert application.handler_for(f"/images/a/{'x' * 24}") is application.hot
    assert application.handler_for("/images/12") is application.pages


def test_a_campaign_image_is_re_encoded_once_at_build_keyed_per_campaign(tmp_path, client):
    world = make_world()
    _worlds_files(world, tmp_path)
    first, second = make_campaign(world), make_campaign(world)
    image_id = Comparison.objects.filter(campaign=first).first().set_a_images[0]
    stored = {c: CampaignImage.objects.get(campaign=c, image_id=image_id).stored_name for c in (first, second)}
    assert all(name.startswith(f"campaign-images/{c.pk}/") for c, name in stored.items())
    bodies = [b"".join(client.get(f"/images/a/{CampaignImage.objects.get(campaign=c, image_id=image_id).token}")
                       .streaming_content) for c in (first, second)]
    assert bodies[0] != bodies[1]  # one campaign's copy does not give away another's
    # Rebuilding re-encodes nothing new.
    assert reencode_campaign_images(campaign_id=first.pk) == 0


def test_a_jpeg_stays_a_jpeg_without_its_metadata():
    picture = PILImage.new("RGB", (40, 30), (120, 30, 200))
    exif = PILImage.Exif()
    exif[0x010F] = "secret-camera"
    raw = io.BytesIO()
    picture.save(raw, format="JPEG", quality=95, exif=exif)
    data, extension = reencoded(raw.getvalue(), key=bytes(range(32)))
    assert extension == ".jpg" and data != raw.getvalue() and b"secret-camera" not in data
    assert reencoded(raw.getvalue(), key=bytes(range(32)))[0] == data  # deterministic
    with pytest.raises(ValueError, match="decode"):
        reencoded(b"not an image", key=bytes(32))
