"""An attacker's view of a live campaign: no set an annotator is shown can be tied to a model or told gold.

The test builds an open campaign over three models (one of them a researcher's private submission) with gold
tasks, works through every task as a crowd annotator, then walks every route of the URL conf that a caller
without staff rights can reach (admin aside: Django's admin lets staff only) with every id, slug and token the
database holds, as an anonymous visitor, as the crowd annotator and as the researcher. With all it read, it
attacks as the issue's reporter did and more:

- it maps each opaque image URL of a task back to a catalogue id by the bytes served (every public
  ``/images/<id>`` is fetched): campaign images are re-encoded copies, so no hash matches;
- it then looks for each task's sets among the image ids any response mentions; a set found beside a model's
  name (or found at all) ties the set to that model, and a set no model returned marks a gold task.

The same attack run on what staff may read (ids from the database) must succeed (the test can fail), and every
task, gold or not, must look the same: same URL shape, same keys, same sizes. Further attacks (issue 22): a
set's order (one model always returns the reference first), and queries whose results were public before a
campaign drew them or after it closed.
"""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotate.models import Assignment, CampaignImage, Comparison
from hpbench.catalog.models import ModelEntry, Query, RetrievalRun
from hpbench.catalog.results import write_topk
from tests.annotate.conftest import enter, make_campaign, make_world, next_task, post_vote

pytestmark = pytest.mark.django_db

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_IMAGE_ID = re.compile(r'/images/(\d+)|"image":\s*(\d+)')
_TOKEN_URL = re.compile(r"^/images/a/[-\w]{24}$")


def _routes() -> list[str]:
    """Every route of the URL conf as a path template (``queries/<int:query_id>/``), admin aside."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if route.startswith("admin/"):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                found.append(route)

    walk(get_resolver().url_patterns, "")
    return found


def _values(name: str, converter: str | None, world, campaign, tokens: list[str]) -> list[str]:
    ids = {
        "image_id": [i.pk for i in world.images],
        "query_id": [q.pk for q in world.queries],
    }
    if name in ids:
        return [str(v) for v in ids[name]]
    if name == "token":
        return [*tokens, "x"]
    if name in ("slug", "name"):
        return [campaign.slug, world.dataset.name, "x"]
    others = [*RetrievalRun.objects.values_list("pk", flat=True), *ModelEntry.objects.values_list("pk", flat=True)]
    return [str(v) for v in sorted({*others, 1})]


def _urls(world, campaign, tokens: list[str]) -> list[str]:
    urls = []
    for route in _routes():
        if route.startswith("^"):
            raise AssertionError(f"a regular-expression route the walk cannot fill: {route}")
        params = _PARAM.findall(route)
        choices = [_values(name, converter or None, world, campaign, tokens) for converter, name in params]
        for combination in itertools.product(*choices):
            url = route
            for value in combination:
                url = _PARAM.sub(value, url, count=1)
            urls.append("/" + url)
            if "queries" in url:
                urls.append(f"/{url}?k=50")
    urls += [f"/queries/?dataset={world.dataset.name}", "/api/schema/", "/api/schema/?format=json"]
    return urls


def _read_everything(client: Client, urls: list[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(url, text) of every text answer and {url: sha256} of every binary one."""
    texts, blobs = [], {}
    for url in urls:
        response = client.get(url)
        # /healthz says 503 when no Celery worker answers (none runs here).
        assert response.status_code < 500 or url == "/healthz", f"{url}: {response.status_code}"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        kind = response.get("Content-Type", "")
        if kind.startswith(("text/", "application/json", "application/vnd.oai")) or "yaml" in kind:
            texts.append((url, body.decode("utf-8", "replace")))
        elif response.status_code == 200:
            blobs[url] = hashlib.sha256(body).hexdigest()
    return texts, blobs


def _ids_in(text: str) -> set[int]:
    return {int(a or b) for a, b in _IMAGE_ID.findall(text)}


def _attack(tasks: list[dict], texts, by_bytes: dict[str, int], model_names: list[str]) -> list[str]:
    """What the attacker learns: each set found among the ids one answer mentions (and which model it names)."""
    found = []
    for task in tasks:
        for side in ("left", "right"):
            ids = {by_bytes.get(item["url"]) for item in task["sets"][side]}
            if None in ids:
                continue
            for url, text in texts:
                if ids <= _ids_in(text):
                    named = [m for m in model_names if m in text]
                    found.append(f"task {task['lease']} {side} set found in {url} (models named: {named})")
    return found


def _ids_of_tokens(campaign) -> dict[str, int]:
    """``{opaque URL: image id}`` of the campaign, read from the database (staff's view)."""
    rows = CampaignImage.objects.filter(campaign=campaign).values_list("token", "image_id")
    return {f"/images/a/{token}": image_id for token, image_id in rows}


def _worlds_files(world, tmp_path) -> None:
    """Give every image a distinct small PNG on disk, so the image endpoints serve them."""
    from PIL import Image as PILImage

    for n, image in enumerate(world.images):
        picture = PILImage.new("RGB", (12, 10), ((37 * n) % 256, (91 * n) % 256, (53 * n + 7) % 256))
        picture.putpixel((n % 12, n % 10), (255 - n % 256, 0, 0))
        picture.save(tmp_path / image.file_path, format="PNG")
    world.dataset.image_root = str(tmp_path)
    world.dataset.save(update_fields=["image_root"])


def test_no_set_of_a_live_task_can_be_tied_to_a_model_or_told_gold(tmp_path, researcher, staff_user):
    world = make_world(n_queries=9, n_models=3)
    _worlds_files(world, tmp_path)
    ModelEntry.objects.filter(pk=world.models[2].pk).update(owner=researcher, is_public=False)
    campaign = make_campaign(world, num_queries=6, gold_share=0.3, votes_per_pair=1, per_person_quota=0)
    assert Comparison.objects.filter(campaign=campaign, is_gold=True).exists()
    assert Comparison.objects.filter(campaign=campaign, is_gold=False).count() >= 5

    crowd = Client(enforce_csrf_checks=True)
    token = enter(crowd, campaign, pid="ATTACKER1")
    tasks: list[dict] = []
    while True:
        body = next_task(crowd, campaign, token).json()
        if body["task"] is None:
            break
        tasks.append(body["task"])
        assert post_vote(crowd, token, lease=body["task"]["lease"]).status_code == 201
    assert len(tasks) == Comparison.objects.filter(campaign=campaign).count()

    # Gold tasks look like every other task: same keys, URL shapes, sizes and alt texts.
    shapes = {
        (tuple(sorted(t)), tuple(sorted(t["sets"])), len(t["sets"]["left"]), len(t["sets"]["right"])) for t in tasks
    }
    assert len(shapes) == 1, shapes
    # Gold tasks are on queries of their own: no reference and text is shown twice.
    assert len({(t["reference"]["url"], t["text"]) for t in tasks}) == len(tasks)
    urls_shown = [t["reference"]["url"] for t in tasks] + [
        item["url"] for t in tasks for side in ("left", "right") for item in t["sets"][side]
    ]
    assert all(_TOKEN_URL.match(url) for url in urls_shown), urls_shown
    shown_tokens = sorted({url.rsplit("/", 1)[1] for url in urls_shown})
    image_ids = {str(i.pk) for i in world.images}
    assert not any(re.search(r"\d+", t) and t in image_ids for t in shown_tokens)

    researcher_client = Client()
    researcher_client.force_login(researcher)
    urls = _urls(world, campaign, shown_tokens)
    model_names = list(ModelEntry.objects.filter(pk__in=[m.pk for m in world.models]).values_list("name", flat=True))
    for who, client in (("anonymous", Client()), ("crowd annotator", crowd), ("researcher", researcher_client)):
        texts, blobs = _read_everything(client, urls)
        public = {h: int(url.rsplit("/", 1)[1]) for url, h in blobs.items() if re.fullmatch(r"/images/\d+", url)}
        by_bytes = {url: public.get(h) for url, h in blobs.items() if url.startswith("/images/a/")}
        # Every opaque URL serves an image, and no public image has the same bytes: hashing links nothing ...
        assert len(by_bytes) == len(shown_tokens) and len(public) == len(world.images), who
        assert all(v is None for v in by_bytes.values()), f"{who}: byte-matched {by_bytes}"
        # ... and even with the links a researcher who reruns the models could make (ids from the database),
        # nothing they can read ties those images to a model, so nothing tells gold from the rest.
        leaks = _attack(tasks, texts, _ids_of_tokens(campaign), model_names)
        assert not leaks, f"{who}: " + "\n".join(leaks)
        assert not [url for url, text in texts if any(tok in text for tok in shown_tokens)], who

    # The attack itself works: staff read each model's results, and the sets they made turn up there.
    staff = Client()
    staff.force_login(staff_user)
    texts, blobs = _read_everything(staff, [u for u in urls if "queries" in u])
    leaks = _attack(tasks, texts, _ids_of_tokens(campaign), model_names)
    n_model_sets = 2 * Comparison.objects.filter(campaign=campaign, is_gold=False).count()
    assert len({leak.split(" found in ")[0] for leak in leaks if "models named: []" not in leak}) == n_model_sets


def test_the_walk_covers_every_path_of_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    walked = {"/" + _PARAM.sub("{}", route) for route in _routes()}  # the schema names <pk> {id}
    documented = {re.sub(r"\{\w+\}", "{}", path) for path in schema["paths"]}
    assert documented and documented <= walked, documented - walked


def test_query_results_stay_hidden_after_the_campaign_closes(client):
    world = make_world()
    campaign = make_campaign(world)
    query = world.queries[0]
    hidden = client.get(f"/api/queries/{query.pk}/results").json()
    assert hidden["results_hidden"] is True and hidden["models"] == [] and hidden["query"]["target"] is None
    page = client.get(f"/queries/{query.pk}/").content.decode()
    assert "kept for annotation studies" in page and f"/images/{query.target_id}" not in page
    campaign.status = "closed"
    campaign.save(update_fields=["status"])
    # Its votes still make benchmarks, and a later campaign may be built on the query: never public.
    after = client.get(f"/api/queries/{query.pk}/results").json()
    assert after["results_hidden"] is True and after["models"] == [] and after["query"]["target"] is None
    query.refresh_from_db()
    assert query.reserved and query.results_public_at is None


def test_a_query_whose_results_were_public_is_never_drawn_into_a_campaign(client):
    world = make_world(n_queries=8)
    seen = world.queries[:4]
    for query in seen:  # the attacker reads them before the campaign exists
        assert len(client.get(f"/api/queries/{query.pk}/results").json()["models"]) == 2
    client.get(f"/queries/{world.queries[4].pk}/")
    campaign = make_campaign(world, num_queries=8, gold_share=0.2)
    drawn = set(Comparison.objects.filter(campaign=campaign).values_list("query_id", flat=True))
    public = {q.pk for q in world.queries[:5]}
    assert drawn and not drawn & public, drawn & public
    stamped = Query.objects.filter(pk__in=public, results_public_at__isnull=False)
    assert set(stamped.values_list("pk", flat=True)) == public
    # The queries drawn join the private pool.
    assert Query.objects.filter(pk__in=drawn, results_public_at__isnull=True, reserved=True).count() == len(drawn)


def test_queries_of_the_private_pool_never_show_their_results(client, staff_user):
    from hpbench.catalog.services import query_pool_reserve

    world = make_world(n_queries=6)
    reserved = query_pool_reserve(dataset=world.dataset, split="val", count=3, seed=1)
    assert len(reserved) == 3
    for query_id in reserved:
        body = client.get(f"/api/queries/{query_id}/results").json()
        assert body["results_hidden"] is True and body["models"] == [] and body["query"]["target"] is None
    assert not Query.objects.filter(pk__in=reserved, results_public_at__isnull=False).exists()
    staff = Client()
    staff.force_login(staff_user)
    assert len(staff.get(f"/api/queries/{reserved[0]}/results").json()["models"]) == 2
    # A public query cannot be reserved afterwards: the pool only takes queries never shown.
    others = [q.pk for q in world.queries if q.pk not in reserved]
    client.get(f"/api/queries/{others[0]}/results")
    assert others[0] not in query_pool_reserve(dataset=world.dataset, split="val", count=10, seed=2)


def test_a_sets_order_does_not_reveal_the_models_rank(tmp_path):
    """One model always returns the reference first (as a zero-shot model does): the attacker who learnt that
    from public pages names its sets by where the reference sits. Sets are shown in a stored random order."""
    world = make_world(n_queries=30, n_images=80, n_models=2)
    first = world.models[0]
    rows = []
    for query in world.queries:
        ranked = [query.reference_id] + [i for i in world.topk[first.pk][query.pk] if i != query.reference_id][:4]
        world.topk[first.pk][query.pk] = ranked
        rows.append(ranked)
    run = RetrievalRun.objects.get(model=first)
    write_topk(run.results_path, query_ids=[q.pk for q in world.queries], image_ids=rows, scores=[[1.0] * 5] * 30)
    campaign = make_campaign(world, num_queries=30, votes_per_pair=1, per_person_quota=0)
    crowd = Client(enforce_csrf_checks=True)
    token = enter(crowd, campaign, pid="ATTACKER2")
    named, right = 0, 0
    while (task := next_task(crowd, campaign, token).json()["task"]) is not None:
        lease = Assignment.objects.select_related("comparison").get(lease=task["lease"])
        comparison = lease.comparison
        for side, label in (("left", "a" if lease.left_is_a else "b"), ("right", "b" if lease.left_is_a else "a")):
            if task["sets"][side][0]["url"] == task["reference"]["url"]:  # the attacker's rule
                named += 1
                right += getattr(comparison, f"set_{label}_model_id") == first.pk
        post_vote(crowd, token, lease=task["lease"])
    n_sets = Comparison.objects.filter(campaign=campaign, set_a_model=first).count() + Comparison.objects.filter(
        campaign=campaign, set_b_model=first
    ).count()
    assert n_sets == 30
    # Rank order would name all 30; a random order names about a fifth (P(>= 20 of 30) is about 1e-9).
    assert named < 20, (named, right)
    # The order shown is stored: the tokens are the sets' images in that order, so votes still map to the sets.
    tokens = dict(CampaignImage.objects.filter(campaign=campaign).values_list("image_id", "token"))
    for c in Comparison.objects.filter(campaign=campaign):
        for side in ("a", "b"):
            images = getattr(c, f"set_{side}_images")
            assert sorted(c.shown["order"][side]) == list(range(len(images)))
            assert c.shown[side] == [tokens[images[i]] for i in c.shown["order"][side]]


def test_a_campaign_can_keep_the_rank_order():
    world = make_world()
    campaign = make_campaign(world, shuffle_sets=False)
    tokens = dict(CampaignImage.objects.filter(campaign=campaign).values_list("image_id", "token"))
    for c in Comparison.objects.filter(campaign=campaign):
        assert c.shown["a"] == [tokens[i] for i in c.set_a_images] and "order" not in c.shown


def test_a_draft_campaign_hides_its_queries_too_but_staff_see_them(client, staff_user):
    world = make_world()
    make_campaign(world, status="draft")
    query = world.queries[0]
    assert client.get(f"/api/queries/{query.pk}/results").json()["results_hidden"] is True
    client.force_login(staff_user)
    assert len(client.get(f"/api/queries/{query.pk}/results").json()["models"]) == 2
