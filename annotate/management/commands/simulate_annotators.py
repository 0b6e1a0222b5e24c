"""Simulated crowd workers voting through the real HTTP API (fills the demo's campaigns).

    python manage.py simulate_annotators demo-campaign --annotators 20 --noise 0.1 --url http://127.0.0.1:8000

Each simulated worker enters as a Prolific participant, then loops next-task -> vote until the server says
it is done. On the demo dataset each worker is a :class:`hpbench.catalog.oracle.SimulatedAnnotator` drawn
with their own bias and noise (``oracle.annotator_draw``; ``--noise`` is the crowd's mean rate of random
answers), judging by the oracle's relevance (requested change met and the rest of the reference kept);
elsewhere the set holding the query's target wins. The command reads the database only to look up what
the oracle needs (the lease's query and the images' attributes); every write goes through HTTP.
"""

from __future__ import annotations

import random
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from annotate.models import Assignment, Campaign, CampaignImage
from hpbench.catalog.models import Dataset, Image


def _image_ids(campaign: Campaign, images: list[dict]) -> list[int]:
    """The catalogue ids behind a task's opaque image URLs (the simulator reads the database, as staff may)."""
    tokens = [item["url"].rstrip("/").rsplit("/", 1)[1] for item in images]
    ids = dict(CampaignImage.objects.filter(campaign=campaign, token__in=tokens).values_list("token", "image_id"))
    return [ids[token] for token in tokens]


class Command(BaseCommand):
    help = "Vote on a campaign as N simulated Prolific workers through the HTTP API."

    def add_arguments(self, parser) -> None:
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--annotators", type=int, default=10)
        parser.add_argument("--noise", type=float, default=0.1, help="probability of a random answer (0..1)")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of a running hpbench")
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--max-votes", type=int, default=0, help="per annotator; 0 = until done")

    def handle(self, *args, **options) -> None:
        campaign = Campaign.objects.select_related("dataset").filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign {options['campaign']!r}")
        if not 0.0 <= options["noise"] <= 1.0:
            raise CommandError("--noise must be between 0 and 1")
        if options["annotators"] < 1:
            raise CommandError("--annotators must be at least 1")
        run = options["seed"] if options["seed"] is not None else secrets.randbelow(10**6)
        self.campaign = campaign
        self.noise = options["noise"]
        self.oracle = None
        if campaign.dataset.kind == Dataset.Kind.DEMO:
            from hpbench.catalog import oracle

            self.oracle = oracle
        workers = range(options["annotators"])
        with ThreadPoolExecutor(max_workers=max(1, min(options["concurrency"], options["annotators"]))) as pool:
            results = list(pool.map(lambda i: self._annotate(options["url"], run, i, options["max_votes"]), workers))
        votes = sum(r[0] for r in results)
        errors = [r[1] for r in results if r[1]]
        self.stdout.write(f"{len(results)} simulated annotators cast {votes} votes on {campaign.slug}")
        for error in errors:
            self.stderr.write(f"  {error}")
        if errors and not votes:
            raise CommandError("no vote was recorded")

    def _annotate(self, base_url: str, run: int, index: int, max_votes: int) -> tuple[int, str]:
        rng = random.Random(f"{run}-{index}")
        person = self.oracle.annotator_draw(rng, noise=self.noise) if self.oracle is not None else None
        slug = self.campaign.slug
        votes = 0
        try:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                entered = client.get(
                    f"/api/annotate/campaigns/{slug}/enter",
                    params={"PROLIFIC_PID": f"sim{run}x{index}", "STUDY_ID": f"sim{run}", "SESSION_ID": f"s{index}"},
                )
                if entered.status_code != 200:
                    return 0, f"annotator {index}: entry refused ({entered.status_code}): {entered.text[:200]}"
                headers = {"X-CSRFToken": client.cookies.get("csrftoken") or ""}
                while not max_votes or votes < max_votes:
                    response = client.post(f"/api/annotate/campaigns/{slug}/next", headers=headers)
                    if response.status_code != 200:
                        return votes, f"annotator {index}: next-task {response.status_code}: {response.text[:200]}"
                    task = response.json()["task"]
                    if task is None:
                        break
                    body = self._answer(task, rng, person)
                    body.update(lease=task["lease"], idempotency_key=str(uuid.uuid4()), time_ms=rng.randint(1500, 9000))
                    answer = client.post("/api/annotate/votes", json=body, headers=headers)
                    if answer.status_code not in (200, 201):
                        return votes, f"annotator {index}: vote {answer.status_code}: {answer.text[:200]}"
                    votes += 1
        except httpx.HTTPError as exc:
            return votes, f"annotator {index}: {type(exc).__name__}: {exc}"
        finally:
            connection.close()
        return votes, ""

    def _answer(self, task: dict, rng: random.Random, person) -> dict:
        """The simulated person's vote body (choice, and ratings/irrelevant when asked)."""
        options = task["options"]
        left = _image_ids(self.campaign, task["sets"]["left"])
        right = _image_ids(self.campaign, task["sets"]["right"])
        query = Assignment.objects.select_related("comparison__query").get(lease=task["lease"]).comparison.query
        score_left = score_right = 0.0
        nothing_met = False
        if self.oracle is not None:
            attrs = dict(
                Image.objects.filter(pk__in=[*left, *right, query.reference_id]).values_list("pk", "attributes")
            )
            try:
                requested = self.oracle.requested_attributes(query.captions, attrs.get(query.reference_id))
            except ValueError:
                requested = {}
            reference = attrs.get(query.reference_id) or {}
            set_left, set_right = [attrs[i] for i in left], [attrs[i] for i in right]
            verdict = person.prefers(set_left, set_right, reference, requested, rng=rng)
            score_left = self.oracle.set_relevance(set_left, reference, requested, keep_weight=person.keep_weight)
            score_right = self.oracle.set_relevance(set_right, reference, requested, keep_weight=person.keep_weight)
            nothing_met = not any(self.oracle.requested_met(image, requested) for image in set_left + set_right)
        else:
            score_left, score_right = float(query.target_id in left), float(query.target_id in right)
            verdict = "a" if score_left > score_right else "b" if score_right > score_left else "tie"
            if rng.random() < self.noise:
                verdict = rng.choice(["a", "b", "tie"])
        choice = {"a": "left", "b": "right", "tie": "tie"}[verdict]
        if choice == "tie" and not options["tie"]:
            choice = rng.choice(["left", "right"])
        body: dict = {"choice": choice}
        if options["ratings"]:
            body["rating_left"] = max(1, min(5, 1 + round(4 * score_left)))
            body["rating_right"] = max(1, min(5, 1 + round(4 * score_right)))
        if options["irrelevant"]:
            body["irrelevant"] = self.oracle is not None and bool(requested) and nothing_met
        return body
