"""Per-campaign opaque image URLs (annotate/aliases.py): tokens, the comparisons' shown payload, the endpoint."""

from __future__ import annotations

import pytest
from django.conf import settings

from annotate.aliases import image_token
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
    assert b"".join(response.streaming_content) == (tmp_path / alias.image.file_path).read_bytes()
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
        assert c.shown["a"] == [a[i] for i in c.set_a_images] and c.shown["b"] == [a[i] for i in c.set_b_images]


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
