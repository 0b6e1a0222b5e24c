"""Steering attack (issue 22): can someone who knows one model's output tie a campaign's sets to models, and move
that model's standing with the votes of a tenth of the annotators?

    .venv/bin/python bench/steering_attack.py [--annotators 50] [--attackers 5] [--comparisons 200] [--port 8770]
        [--quick]

All on 127.0.0.1, bounded: a scratch PostgreSQL database (``hpbench_bench_steering``, dropped at the end), a
temporary folder of real PNG images, gunicorn serving hpbench; every vote and every read goes through HTTP.
The catalogue: 3 models' fabricated top-5 runs over 400 queries; model ``zs`` returns the reference first (as
a zero-shot model does); each (query, model) has a hidden merit, and honest simulated annotators pick the set of
higher merit with their own accuracy (0.70-0.90). A quarter of the queries have their results read publicly
(``/api/queries/<id>/results``) before any campaign is built.

Printed:
1. attribution: queries drawn whose results were public (today's rule, which ignored that, against this one);
   campaign images whose bytes equal a public ``/images/<id>`` (SHA-256), and the sets this attributes to models
   when the attacker reruns the models (knows every model's top 5); sets named by the rank-order rule learnt from
   public pages (reference shown first: ``zs``), with ``shuffle_sets`` off (today's order) and on;
2. steering: two campaigns built alike, one voted on by honest annotators only, one where ``--attackers`` of
   them identify the steered model's sets perfectly (they read the database) and always pick them; the steered
   model's agreement on its comparisons (share whose majority of counted votes picks its set; the model's own
   scores always do) with a 95% bootstrap interval over comparisons, honest, attacked, and attacked once quality
   control (annotate/quality.py, as Celery beat runs it) excluded whom it flagged;
3. flags: replaying the attacked campaign's votes in order, when each attacker is first flagged (family-wise
   p < 0.05) and excluded (p < 0.01): the attacker's own votes and the campaign's votes by then; honest
   annotators flagged at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import annotate_load as load  # noqa: E402  (bench/ is not a package)

DB_NAME = "hpbench_bench_steering"
N_IMAGES, N_QUERIES, K = 600, 400, 5
MODELS = ("zs", "steered", "other")


def _world(image_root: Path, seed: int) -> dict:
    """Images (real PNGs), queries, three models' runs; returns ids and the hidden merits."""
    import numpy as np
    from django.conf import settings
    from PIL import Image as PILImage

    from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
    from hpbench.catalog.results import write_topk

    rng = np.random.default_rng(seed)
    for i in range(N_IMAGES):
        pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(image_root / f"i{i}.png", format="PNG")
    dataset = Dataset.objects.create(name="steering", kind=Dataset.Kind.DEMO, image_root=str(image_root))
    Image.objects.bulk_create(
        [Image(dataset=dataset, name=f"i{i}", category="dress", split="val", file_path=f"i{i}.png")
         for i in range(N_IMAGES)]
    )  # fmt: skip
    ids = list(Image.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True))
    refs = rng.choice(N_IMAGES, size=N_QUERIES)
    Query.objects.bulk_create(
        [Query(dataset=dataset, key=f"q{q}", split="val", category="dress", reference_id=ids[refs[q]],
               target_id=ids[(refs[q] + 1) % N_IMAGES], captions=["is red", "has long sleeves"])
         for q in range(N_QUERIES)]
    )  # fmt: skip
    queries = list(Query.objects.filter(dataset=dataset).order_by("pk").values_list("pk", "reference_id"))
    topks: dict[int, dict[int, list[int]]] = {}
    models = {}
    for name in MODELS:
        model = ModelEntry.objects.create(name=f"bench-{name}", family=ModelEntry.Family.DEMO)
        rows = []
        for _q, reference in queries:
            others = [ids[j] for j in rng.choice(N_IMAGES, size=K + 1, replace=False) if ids[j] != reference][:K]
            rows.append([reference, *others[: K - 1]] if name == "zs" else others)
        path = Path(settings.MEDIA_ROOT) / f"steering-run-{name}.npz"
        write_topk(path, query_ids=[q for q, _ in queries], image_ids=rows, scores=[[1.0] * K] * len(rows))
        RetrievalRun.objects.create(
            model=model, dataset=dataset, split="val", status="finished", results_path=str(path), topk=K
        )
        models[name] = model
        topks[model.pk] = {q: row for (q, _), row in zip(queries, rows, strict=True)}
    merit = {(q, m.pk): float(rng.random()) for q, _ in queries for m in models.values()}
    return {"dataset": dataset, "models": models, "topks": topks, "merit": merit, "queries": [q for q, _ in queries]}


def _campaign(world: dict, slug: str, n: int, *, seed: int, **options):
    from annotate.models import Campaign
    from annotate.services.campaign_build import campaign_build
    from annotate.services.campaigns import campaign_create, campaign_set_status

    campaign = campaign_create(
        slug=slug, name=slug, dataset=world["dataset"], models=list(world["models"].values()),
        num_queries=n, gold_share=0.0, per_person_quota=0, seed=seed, min_vote_ms=0, **options,
    )  # fmt: skip
    campaign_build(campaign=campaign)
    campaign_set_status(campaign=campaign, status=Campaign.Status.OPEN)
    return campaign


class _Annotator:
    """One simulated crowd worker talking to the server over HTTP."""

    def __init__(self, base: str, slug: str, pid: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=30)
        self.slug = slug
        link = f"PROLIFIC_PID={pid}&STUDY_ID=s1&SESSION_ID=sess-{pid}"
        answer = self.http.get(f"/api/annotate/campaigns/{slug}/enter?{link}")
        answer.raise_for_status()
        self.csrf = self.http.cookies["csrftoken"]

    def next(self) -> dict | None:
        answer = self.http.post(f"/api/annotate/campaigns/{self.slug}/next", headers={"X-CSRFToken": self.csrf})
        answer.raise_for_status()
        return answer.json()["task"]

    def vote(self, lease: str, choice: str) -> None:
        body = {"lease": lease, "choice": choice, "idempotency_key": str(uuid.uuid4()), "time_ms": 4000}
        answer = self.http.post("/api/annotate/votes", json=body, headers={"X-CSRFToken": self.csrf})
        assert answer.status_code in (200, 201), answer.text

    def close(self) -> None:
        self.http.close()


def _sides(lease: str) -> tuple[int, int, int, int]:
    """(query, comparison, model on the left, model on the right) of a lease, read from the database (the
    simulation's knowledge: the truth for honest annotators, perfect identification for attackers)."""
    from annotate.models import Assignment

    a = Assignment.objects.select_related("comparison").get(lease=lease)
    c = a.comparison
    left, right = (c.set_a_model_id, c.set_b_model_id) if a.left_is_a else (c.set_b_model_id, c.set_a_model_id)
    return c.query_id, c.pk, left, right


def _walk(base: str, slug: str, pid: str) -> list[dict]:
    """Every task of a campaign as one annotator sees it (voting left on each)."""
    who = _Annotator(base, slug, pid)
    tasks = []
    while (task := who.next()) is not None:
        tasks.append(task)
        who.vote(task["lease"], "left")
    who.close()
    return tasks


def _attribution(base: str, world: dict, public: set[int], seed: int, n: int) -> None:
    import httpx

    from hpbench.catalog.models import Query

    print("\n== 1. Attribution")
    zs = world["models"]["zs"].pk
    walks = {}
    for label, shuffle in (("rank order (today)", False), ("shuffled (shuffle_sets)", True)):
        campaign = _campaign(world, f"attr-{int(shuffle)}", n, seed=seed, shuffle_sets=shuffle, votes_per_pair=1)
        walks[label] = (campaign, _walk(base, campaign.slug, f"ATTR{int(shuffle)}"))
    from annotate.models import Comparison

    drawn = set(Comparison.objects.filter(campaign__slug__startswith="attr-").values_list("query_id", flat=True))
    covered = sorted(Query.objects.filter(dataset=world["dataset"]).values_list("pk", flat=True))
    old_rule = set(random.Random(seed).sample(covered, n))  # today's draw: any covered query
    print(f"queries drawn whose results were public before the build: today's rule {len(old_rule & public)} of {n}; "
          f"now {len(drawn & public)} of {len(drawn)}")

    campaign, tasks = walks["shuffled (shuffle_sets)"]
    http = httpx.Client(base_url=base, timeout=30)
    public_hash = {}
    for image_id, _path in _image_files(world):
        answer = http.get(f"/images/{image_id}")
        if answer.status_code == 200:
            public_hash[hashlib.sha256(answer.content).hexdigest()] = image_id
    urls = sorted({item["url"] for t in tasks for side in ("left", "right") for item in t["sets"][side]})
    files = dict(_image_files(world))
    from annotate.models import CampaignImage

    token_image = dict(CampaignImage.objects.filter(campaign=campaign).values_list("token", "image_id"))
    linked = {"today (the file itself)": {}, "now (re-encoded)": {}}
    for url in urls:
        served = hashlib.sha256(http.get(url).content).hexdigest()
        # What today's endpoint served for this token: the file itself.
        today = hashlib.sha256(files[token_image[url.rsplit("/", 1)[1]]].read_bytes()).hexdigest()
        for label, digest in zip(linked, (today, served), strict=True):
            if digest in public_hash:
                linked[label][url] = public_hash[digest]
    http.close()
    for label, by_url in linked.items():
        print(f"campaign images byte-identical to a public /images/<id>, {label}: {len(by_url)} of {len(urls)}")
    for label, by_url in linked.items():
        named = right = total = 0
        for task in tasks:
            query, _comparison, left, right_model = _sides(task["lease"])
            for side, model in (("left", left), ("right", right_model)):
                total += 1
                ids = {by_url.get(item["url"]) for item in task["sets"][side]}
                makers = [m for m, top in world["topks"].items() if set(top[query][:K]) == ids]
                if len(makers) == 1:
                    named += 1
                    right += makers[0] == model
        print(f"sets attributed by byte matching + the models rerun locally, {label}: {named} of {total} "
              f"({named - right} wrong)")
    for label, (_campaign_row, walk) in walks.items():
        named = right = contains = contains_right = 0
        zs_sets = 0
        for task in walk:
            _q, _c, left, right_model = _sides(task["lease"])
            for side, model in (("left", left), ("right", right_model)):
                zs_sets += model == zs
                shown = [item["url"] for item in task["sets"][side]]
                if shown[0] == task["reference"]["url"]:
                    named += 1
                    right += model == zs
                if task["reference"]["url"] in shown:
                    contains += 1
                    contains_right += model == zs
        print(f"sets named '{MODELS[0]}' by the rank-order rule from public pages (reference shown first), {label}: "
              f"{named} ({right} right) of {zs_sets} {MODELS[0]} sets in {2 * len(walk)}; the weaker rule "
              f"'set holds the reference': {contains} ({contains_right} right)")


def _image_files(world: dict) -> list[tuple[int, Path]]:
    from hpbench.catalog.models import Image

    root = Path(world["dataset"].image_root)
    return [(pk, root / path) for pk, path in Image.objects.filter(dataset=world["dataset"]).values_list(
        "pk", "file_path")]  # fmt: skip


def _vote_campaign(base: str, slug: str, world: dict, n_annotators: int, attackers: int, seed: int) -> None:
    """Round-robin next-task -> vote for every annotator until the campaign has no task left."""
    rng = random.Random(seed)
    steered = world["models"]["steered"].pk
    people = []
    for i in range(n_annotators):
        accuracy = rng.uniform(0.7, 0.9)
        people.append((_Annotator(base, slug, f"{slug}-{i:04d}"), i < attackers, accuracy))
    rng.shuffle(people)  # attackers enter among the others
    active = list(people)
    while active:
        for person in list(active):
            who, attacker, accuracy = person
            task = who.next()
            if task is None:
                active.remove(person)
                who.close()
                continue
            query, _c, left, right = _sides(task["lease"])
            if attacker and steered in (left, right):
                choice = "left" if left == steered else "right"
            else:
                better = "left" if world["merit"][query, left] > world["merit"][query, right] else "right"
                choice = better if rng.random() < accuracy else ("right" if better == "left" else "left")
            who.vote(task["lease"], choice)


def _agreement(slug: str, model: int, *, counted_only: bool, rounds: int = 2000, seed: int = 0):
    """The model's agreement on its comparisons (majority of votes picks its set; ties dropped) and a 95%
    bootstrap interval over those comparisons."""
    import numpy as np

    from annotate.models import Comparison, Vote

    votes = Vote.objects.filter(comparison__campaign__slug=slug, comparison__is_gold=False)
    if counted_only:
        votes = votes.counted()
    rows = Comparison.objects.filter(campaign__slug=slug).values_list("pk", "set_a_model_id", "set_b_model_id")
    sides = {pk: (a, b) for pk, a, b in rows}
    tally: dict[int, list[int]] = {}
    for comparison, choice in votes.values_list("comparison_id", "choice"):
        a, b = sides[comparison]
        if model not in (a, b) or choice not in ("a", "b"):
            continue
        picked = a if choice == "a" else b
        row = tally.setdefault(comparison, [0, 0])
        row[0 if picked == model else 1] += 1
    wins = np.array([1.0 if f > g else 0.0 for f, g in tally.values() if f != g])
    if not len(wins):
        return float("nan"), (float("nan"), float("nan")), 0
    draws = np.random.default_rng(seed).integers(0, len(wins), size=(rounds, len(wins)))
    means = wins[draws].mean(axis=1)
    return float(wins.mean()), (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))), len(wins)


def _flag_times(slug: str, attackers: set[int]) -> dict[int, dict]:
    """Replay the campaign's votes in order; the first prefix (every 10 votes) at which each attacker's test
    passes the flag and the exclusion bars."""
    from annotate.models import Vote
    from annotate.quality import STEERING_EXCLUDE_P, STEERING_FLAG_P
    from hpbench.metrics.steering import SteeringVote, steering_tests, worst_per_annotator

    rows = list(
        Vote.objects.filter(comparison__campaign__slug=slug, comparison__is_gold=False)
        .order_by("pk")
        .values_list("annotator_id", "comparison_id", "comparison__set_a_model_id", "comparison__set_b_model_id",
                     "choice")
    )  # fmt: skip
    votes = [SteeringVote(*row) for row in rows]
    found: dict[int, dict] = {a: {} for a in attackers}
    for end in [*range(10, len(votes), 10), len(votes)]:
        worst = worst_per_annotator(steering_tests(votes[:end]))
        for a in attackers:
            test = worst.get(a)
            if test is None:
                continue
            own = sum(v.annotator == a for v in votes[:end])
            for bar, name in ((STEERING_FLAG_P, "flagged"), (STEERING_EXCLUDE_P, "excluded")):
                if test.p_adjusted < bar and name not in found[a]:
                    found[a][name] = (own, end)
        if all(len(f) == 2 for f in found.values()):
            break
    return found


def _steering(base: str, world: dict, args) -> None:
    from annotate.models import Annotator, Comparison
    from annotate.quality import STEERING_FLAG_P, quality_refresh, steering_figures

    steered = world["models"]["steered"].pk
    slugs = {}
    for label, attackers in (("honest", 0), ("attacked", args.attackers)):
        campaign = _campaign(world, f"steer-{label}", args.comparisons, seed=args.seed + 1,
                             votes_per_pair=args.votes_per_pair)  # fmt: skip
        if not slugs:
            built = Comparison.objects.filter(campaign=campaign).count()
            print(f"\n== 2. Steering: {args.annotators} annotators, {args.attackers} of them attackers "
                  f"({args.attackers / args.annotators:.0%}), {built} comparisons (of {args.comparisons} asked; "
                  f"queries whose results were public are not drawn) x {args.votes_per_pair} votes")
        _vote_campaign(base, campaign.slug, world, args.annotators, attackers, args.seed + 2)
        slugs[label] = campaign
    honest, (lo, hi), n_h = _agreement(slugs["honest"].slug, steered, counted_only=True)
    print(f"steered model's agreement, honest campaign: {honest:.3f} [{lo:.3f}, {hi:.3f}] over {n_h} comparisons "
          f"(half-width {(hi - lo) / 2:.3f})")
    attacked, (alo, ahi), n_a = _agreement(slugs["attacked"].slug, steered, counted_only=True)
    print(f"attacked campaign, every vote counted: {attacked:.3f} [{alo:.3f}, {ahi:.3f}] over {n_a}; shift "
          f"{attacked - honest:+.3f} ({'outside' if not lo <= attacked <= hi else 'inside'} the honest interval)")
    attacker_ids = set(
        Annotator.objects.filter(campaign=slugs["attacked"])
        .filter(external_id_hash__in=[_hash(f"steer-attacked-{i:04d}") for i in range(args.attackers)])
        .values_list("pk", flat=True)
    )
    flagged = set(quality_refresh(campaign=slugs["attacked"]))
    after, (flo, fhi), n_f = _agreement(slugs["attacked"].slug, steered, counted_only=True)
    print(f"attacked campaign after quality control excluded {len(flagged)} annotator(s) "
          f"({len(flagged & attacker_ids)} attackers, {len(flagged - attacker_ids)} honest): {after:.3f} "
          f"[{flo:.3f}, {fhi:.3f}] over {n_f}; shift {after - honest:+.3f}")
    honest_flagged = [
        a for a, t in steering_figures(campaign=slugs["honest"]).items() if t.p_adjusted < STEERING_FLAG_P
    ]
    print(f"honest campaign: annotators flagged by the steering test {len(honest_flagged)} of {args.annotators}")

    print("\n== 3. When the attackers are caught (replaying the attacked campaign's votes in order)")
    total = sum(1 for _ in _vote_ids(slugs["attacked"].slug))
    for a, times in sorted(_flag_times(slugs["attacked"].slug, attacker_ids).items()):
        flag = times.get("flagged")
        excl = times.get("excluded")
        print(f"attacker {a}: flagged after {flag[0]} of their votes ({flag[1]} of {total} in the campaign)"
              if flag else f"attacker {a}: never flagged", end="")
        print(f"; excluded after {excl[0]} ({excl[1]})" if excl else "; never excluded")


def _vote_ids(slug: str):
    from annotate.models import Vote

    return Vote.objects.filter(comparison__campaign__slug=slug).values_list("pk", flat=True)


def _hash(pid: str) -> str:
    from annotate.services.entry import _hash_external_id

    return _hash_external_id("prolific", pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--attackers", type=int, default=5)
    parser.add_argument("--comparisons", type=int, default=200)
    parser.add_argument("--votes-per-pair", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8770)
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (the test's mode)")
    args = parser.parse_args()
    if args.quick:
        args.annotators, args.attackers, args.comparisons = 20, 2, 40

    var_dir = Path(tempfile.mkdtemp(prefix="hpbench-bench-steering-"))
    image_root = var_dir / "images"
    image_root.mkdir()
    env = load._setup_env(var_dir, db_name=DB_NAME)
    load._recreate_database(db_name=DB_NAME)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    world = _world(image_root, args.seed)
    import httpx

    server = load._start_gunicorn(env, port=args.port, workers=2, threads=2)
    try:
        base = f"http://127.0.0.1:{args.port}"
        public = set(random.Random(f"public-{args.seed}").sample(world["queries"], N_QUERIES // 4))
        with httpx.Client(base_url=base, timeout=30) as http:
            for query in public:  # the public pages, read before any campaign exists
                assert http.get(f"/api/queries/{query}/results").json()["models"]
        _attribution(base, world, public, args.seed, 30 if args.quick else 100)
        _steering(base, world, args)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        from django.db import connections

        connections.close_all()
        load._recreate_database(drop_only=True, db_name=DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
