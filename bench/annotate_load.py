"""Load test of the annotation hot path: next-task + vote over HTTP against gunicorn + PostgreSQL.

    .venv/bin/python bench/annotate_load.py [--duration 20] [--annotators 200] [--rate 400] [--workers 3] [--threads 2]
        [--db-socket /var/run/postgresql] [--keep] [--reuse]

What it does, all on 127.0.0.1 and bounded in time:
1. creates a scratch PostgreSQL database (``hpbench_bench_annot``, dropped at the end unless --keep),
   migrates it and builds two campaigns from fabricated finished retrieval runs: 100,000 comparisons
   and 100 comparisons (3 votes wanted per pair, no per-person quota);
2. counts the SQL round trips of one next-task and one vote request at both sizes, in-process
   (``CaptureQueriesContext`` around Django's test client: BEGIN and COMMIT included), and what one
   vote writes (WAL records and bytes, updates made in place), figures that do not depend on load;
3. starts gunicorn (``-k gthread``) and 200 simulated Prolific workers (asyncio, one keep-alive
   connection each, on uvloop), each looping next-task -> vote on the large campaign for ``--duration`` seconds,
   either closed loop or paced at ``--rate`` votes/s offered in all (think time between votes);
4. prints votes/s, next-task and vote latency percentiles, votes acknowledged vs rows in the database,
   duplicates and over-filled comparisons (0 expected), and the CPU each vote cost gunicorn,
   PostgreSQL and the load generator (all three share the machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import uvloop

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "hpbench_bench_annot"
PG = "postgres://postgres@127.0.0.1:5432"


def _setup_env(
    var_dir: Path, db_socket: str = "", *, db_name: str = "", cache_url: str = "redis://127.0.0.1:6379/1"
) -> dict[str, str]:
    """Environment of the bench's server and of this process (also used by bench/trust_report.py, which passes
    a database name and a cache of its own)."""
    # A socket folder (percent-encoded in the URL) instead of 127.0.0.1: a single-machine deployment's choice.
    server = f"postgres://postgres@{quote(db_socket, safe='')}:5432" if db_socket else PG
    env = {
        "DATABASE_URL": f"{server}/{db_name or DB_NAME}",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HPBENCH_VAR_DIR": str(var_dir),
        "DB_CONN_MAX_AGE": "600",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        # As in production (README): the cache every gunicorn process shares (logged-in users' sessions).
        "CACHE_URL": cache_url,
        "CACHE_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
        "CELERY_BROKER_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}:",
        "LOG_LEVEL": "WARNING",
        # Every simulated annotator enters from this machine: no per-IP limit on new crowd identities.
        "HPBENCH_CROWD_NEW_PER_IP_HOUR": "0",
        # Plain HTTP on loopback with no TLS proxy in front: no redirect to https, cookies sent over http.
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "DJANGO_SETTINGS_MODULE": "hpbench.settings",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    return env


def _recreate_database(drop_only: bool = False, *, db_name: str = "") -> None:
    import psycopg2

    name = db_name or DB_NAME
    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop_only:
            cur.execute(f"CREATE DATABASE {name}")
    conn.close()


def _build(n_queries: int, sizes: tuple[int, ...] = (100_000, 100)) -> dict[int, str]:
    """Catalogue with ``n_queries`` queries and two models' runs; a campaign of each size (100,000 and 100)."""
    import numpy as np
    from django.conf import settings

    from annotate.models import Campaign
    from annotate.services.campaign_build import campaign_build
    from annotate.services.campaigns import campaign_create, campaign_set_status
    from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
    from hpbench.catalog.results import write_topk

    dataset = Dataset.objects.create(name="bench", kind=Dataset.Kind.DEMO, image_root="/tmp")
    n_images = 5000
    Image.objects.bulk_create(
        [
            Image(dataset=dataset, name=f"i{i}", category="dress", split="val", file_path=f"i{i}.png")
            for i in range(n_images)
        ],
        batch_size=5000,
    )
    image_ids = np.array(Image.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True))
    rng = np.random.default_rng(0)
    refs = rng.integers(0, n_images, size=n_queries)
    Query.objects.bulk_create(
        [
            Query(
                dataset=dataset,
                key=f"q{q}",
                split="val",
                category="dress",
                reference_id=int(image_ids[refs[q]]),
                target_id=int(image_ids[(refs[q] + 1) % n_images]),
                captions=["is red", "has long sleeves"],
            )
            for q in range(n_queries)
        ],
        batch_size=5000,
    )
    query_ids = np.array(Query.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True))
    models = []
    for m in range(2):
        model = ModelEntry.objects.create(name=f"bench-model-{m}", family=ModelEntry.Family.DEMO)
        top = image_ids[rng.integers(0, n_images, size=(n_queries, 5))]
        path = Path(settings.MEDIA_ROOT) / f"bench-run-{m}.npz"
        write_topk(path, query_ids=query_ids, image_ids=top, scores=np.ones(top.shape, dtype=np.float32))
        RetrievalRun.objects.create(
            model=model, dataset=dataset, split="val", status="finished", results_path=str(path), topk=5
        )
        models.append(model)
    slugs = {}
    for size in sizes:
        slug = f"bench-{size}"
        campaign = campaign_create(
            slug=slug,
            name=slug,
            dataset=dataset,
            models=models,
            num_queries=size,
            gold_share=0.0,
            per_person_quota=0,
            votes_per_pair=3,
            # A cap per model pair that never binds: each pick still weighs it (its cost is measured), yet the
            # simulated workers, on two models with no quota, are never sent away by it.
            max_votes_per_model_pair=1000,
        )
        t0 = time.perf_counter()
        count = campaign_build(campaign=campaign)
        campaign_set_status(campaign=campaign, status=Campaign.Status.OPEN)
        print(f"built {slug}: {count} comparisons in {time.perf_counter() - t0:.1f} s")
        slugs[count] = slug
    return slugs


class _InProcessAnnotator:
    """A crowd worker entered into ``slug`` through Django's test client (no HTTP server involved)."""

    def __init__(self, slug: str, pid: str) -> None:
        from django.test import Client

        self.slug = slug
        self.client = Client()
        self.client.get(f"/api/annotate/campaigns/{slug}/enter?PROLIFIC_PID={pid}&STUDY_ID=bench&SESSION_ID=s{pid}")
        self.token = self.client.cookies["csrftoken"].value

    def next_task(self):
        return self.client.post(f"/api/annotate/campaigns/{self.slug}/next", HTTP_X_CSRFTOKEN=self.token)

    def vote(self, lease: str):
        body = {"lease": lease, "choice": "left", "idempotency_key": uuid.uuid4().hex}
        return self.client.post(
            "/api/annotate/votes", body, content_type="application/json", HTTP_X_CSRFTOKEN=self.token
        )


def _count_queries(slugs: dict[int, str]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    print(
        "\nSQL round trips per request (BEGIN and COMMIT travel with the statements; crowd workers have no"
        " session, a signed cookie says who they are; PostgreSQL's one-off PREPAREs per connection happen before"
        " counting):"
    )
    for size, slug in sorted(slugs.items()):
        annotator = _InProcessAnnotator(slug, f"counter{size}")
        next_task, vote = annotator.next_task, annotator.vote
        vote(next_task().json()["task"]["lease"])  # the first call leases two; the vote prepares its statements
        lease = next_task().json()["task"]["lease"]
        with CaptureQueriesContext(connection) as vote_q:
            r = vote(lease)
            assert r.status_code == 201, r.content
        with CaptureQueriesContext(connection) as next_q:
            r = next_task()
            assert r.status_code == 200 and r.json()["task"], r.content
        with CaptureQueriesContext(connection) as resume_q:
            next_task()
        print(
            f"  {size:>7} comparisons: next (leases one) {len(next_q)}, next (resume) {len(resume_q)}, "
            f"vote {len(vote_q)}"
        )
    connection.close()


_HOT_TABLES = ("annotate_comparison", "annotate_annotator", "annotate_assignment")


def _write_counters(cursor) -> dict[str, int]:
    cursor.execute("SELECT pg_stat_force_next_flush()")  # this session's pending statistics, now
    cursor.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
    counters = dict(zip(("wal_records", "wal_fpi", "wal_bytes"), map(int, cursor.fetchone()), strict=True))
    cursor.execute(
        "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = ANY(%s)", [list(_HOT_TABLES)]
    )
    for table, updates, hot in cursor.fetchall():
        counters[f"{table}.upd"], counters[f"{table}.hot"] = updates, hot
    return counters


def _write_costs(slug: str, n: int = 200) -> None:
    """What one vote writes (next-task + vote, one annotator, in-process): WAL, and updates made in place.

    Unlike times, these do not depend on how busy the machine is: the figure to compare schema changes by.
    """
    from django.db import connection

    annotator = _InProcessAnnotator(slug, f"writes-{uuid.uuid4().hex[:8]}")

    def one_vote() -> None:
        r = annotator.vote(annotator.next_task().json()["task"]["lease"])
        assert r.status_code == 201, r.content

    one_vote()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # full-page images: every page's first change after a checkpoint
        one_vote()
        before = _write_counters(cursor)
        for _ in range(n):
            one_vote()
        after = _write_counters(cursor)
    delta = {key: after[key] - before[key] for key in after}
    in_place = ", ".join(
        f"{table.removeprefix('annotate_')} {delta[f'{table}.hot']}/{delta[f'{table}.upd']}" for table in _HOT_TABLES
    )
    print(
        f"\nwrites per vote (one annotator, {n} votes): WAL {delta['wal_records'] / n:.1f} records,"
        f" {delta['wal_bytes'] / n:.0f} bytes ({delta['wal_fpi'] / n:.2f} full-page images);"
        f" updates in place (HOT) / all: {in_place}"
    )
    connection.close()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class _CpuMeter:
    """CPU seconds spent since creation by gunicorn, PostgreSQL, Redis and this process (the load generator),
    read from /proc: where each vote's CPU goes on the shared cores."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> dict[str, float]:
        tick = os.sysconf("SC_CLK_TCK")
        totals = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0, "load generator": 0.0, "other": 0.0}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / tick
            if int(proc.name) == os.getpid():
                group = "load generator"
            elif b"gunicorn" in cmdline:
                group = "gunicorn"
            elif cmdline.startswith(b"postgres"):
                group = "postgres"
            elif cmdline.startswith(b"redis-server"):
                group = "redis"
            else:
                group = "other"
            totals[group] += seconds
        return totals

    def read(self) -> dict[str, float]:
        now = self._sample()
        return {group: now[group] - self.start.get(group, 0.0) for group in now}


class _Connection:
    """One keep-alive HTTP/1.1 connection with just enough of the protocol for this API.

    The load generator shares the cores with gunicorn and PostgreSQL, so it must be cheap: it writes
    pre-assembled bytes and reads a Content-Length body (about 0.3 ms of CPU per vote, next-task and vote
    together, as the CPU figures printed at the end show).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.cookies: dict[str, str] = {}
        self.headers = b""

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.reader, self.writer = self.writer, None, None
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    def _remember_cookies(self, value: bytes) -> None:
        name, _, rest = value.decode("latin-1").partition("=")
        self.cookies[name.strip()] = rest.split(";", 1)[0]
        self.headers = (
            "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n"
            f"X-CSRFToken: {self.cookies.get('csrftoken', '')}\r\n"
        ).encode("latin-1")

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request and return (status, body). Raises ConnectionError when the server hangs up."""
        if self.writer is None:  # the server closed the last one ("Connection: close")
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode("latin-1")
        self.writer.write(head + self.headers + b"\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        keep_alive = True
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"set-cookie":
                self._remember_cookies(value.strip())
            elif name == b"transfer-encoding":
                raise ConnectionError("chunked answers are not expected from this API")
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        answer = await self.reader.readexactly(length) if length else b""
        if not keep_alive:
            await self.close()
        return status, answer


async def _load(host: str, port: int, slug: str, annotators: int, duration: float, rate: float = 0.0) -> dict:
    """Closed loop (``rate`` 0: every annotator votes again at once), or paced: each annotator starts a vote
    every ``annotators / rate`` seconds (think time), so the offered load is ``rate`` votes/s."""
    stats = {"next_ms": [], "vote_ms": [], "acked": 0, "acked_in_window": 0, "errors": {}, "done": 0}
    # New participants each run (as in a new study), also when --reuse keeps the campaign.
    run = f"load{uuid.uuid4().hex[:8]}"
    entered = [0]

    def error(key: str) -> None:
        stats["errors"][key] = stats["errors"].get(key, 0) + 1

    async def one(i: int) -> None:
        # One connection per annotator, as browsers keep one: a shared pool would queue on the client side.
        http = _Connection(host, port)
        await http.open()
        try:
            await annotate(i, http)
        finally:
            await http.close()

    async def annotate(i: int, http: _Connection) -> None:
        status, _ = await http.request(
            "GET", f"/api/annotate/campaigns/{slug}/enter?PROLIFIC_PID={run}-{i}&STUDY_ID=bench&SESSION_ID=s{i}"
        )
        if status != 200 or "hpbench_annotators" not in http.cookies:
            error(f"enter {status}")
            return
        entered[0] += 1
        await start.wait()
        period = annotators / rate if rate else 0.0
        if period:
            await asyncio.sleep(period * i / annotators)  # spread the starts evenly
        next_path = f"/api/annotate/campaigns/{slug}/next"
        choice = "left" if i % 2 else "right"
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            next_start = t0 + period
            status, body = await http.request("POST", next_path)
            stats["next_ms"].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                error(f"next {status}")
                continue
            task = json.loads(body)["task"]
            if task is None:
                stats["done"] += 1
                return
            vote = json.dumps(
                {"lease": task["lease"], "choice": choice, "time_ms": 1000, "idempotency_key": uuid.uuid4().hex}
            ).encode()
            t0 = time.perf_counter()
            status, _ = await http.request("POST", "/api/annotate/votes", vote)
            stats["vote_ms"].append((time.perf_counter() - t0) * 1000)
            if status == 201:
                stats["acked"] += 1
                if time.perf_counter() <= deadline:
                    stats["acked_in_window"] += 1
            else:
                error(f"vote {status}")
            if period:
                await asyncio.sleep(max(0.0, next_start - time.perf_counter()))

    start = asyncio.Event()
    deadline = float("inf")
    tasks = [asyncio.create_task(one(i)) for i in range(annotators)]
    # Entering is not part of the measurement: wait until every worker has its session.
    wait_until = time.perf_counter() + 60
    while entered[0] < annotators and time.perf_counter() < wait_until and not stats["errors"]:
        await asyncio.sleep(0.2)
    cpu = _CpuMeter()
    t_start = time.perf_counter()
    deadline = t_start + duration
    start.set()
    await asyncio.gather(*tasks)
    stats["elapsed"] = time.perf_counter() - t_start
    stats["cpu_s"] = cpu.read()
    return stats


def _sequential(base: str, slug: str, n: int = 200) -> None:
    """One annotator, one request at a time: the service time without queueing."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as http:
        link = {"PROLIFIC_PID": "sequential", "STUDY_ID": "bench", "SESSION_ID": "s-sequential"}
        entered = http.get(f"/api/annotate/campaigns/{slug}/enter", params=link)
        entered.raise_for_status()
        headers = {"X-CSRFToken": http.cookies["csrftoken"]}
        next_ms, vote_ms = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            answer = http.post(f"/api/annotate/campaigns/{slug}/next", headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"next-task answered {answer.status_code}: {answer.text[:300]}")
            task = answer.json()["task"]
            next_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            r = http.post(
                "/api/annotate/votes",
                headers=headers,
                json={"lease": task["lease"], "choice": "left", "idempotency_key": uuid.uuid4().hex},
            )
            assert r.status_code == 201, r.text
            vote_ms.append((time.perf_counter() - t0) * 1000)
    print(
        f"sequential (1 annotator, {n} votes): next p50 {_pct(next_ms, 50):.1f} ms p99 {_pct(next_ms, 99):.1f} ms;"
        f" vote p50 {_pct(vote_ms, 50):.1f} ms p99 {_pct(vote_ms, 99):.1f} ms"
    )


def _start_gunicorn(
    env: dict[str, str], *, port: int, workers: int, threads: int, worker_class: str = "gthread"
) -> subprocess.Popen:
    """Start gunicorn on 127.0.0.1:``port`` serving ``hpbench.wsgi`` and return once it answers (or after 20 s)."""
    import httpx

    cmd = [
        sys.executable, "-m", "gunicorn", "hpbench.wsgi", "-w", str(workers), "-k", worker_class,
        "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        "--keep-alive", "75", "--backlog", "2048",
    ]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    for _ in range(100):
        try:
            # Any answer means it is up (not /healthz: its Celery ping waits for a worker the bench does not start).
            httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered votes/s shared by the annotators (think time); 0 = closed loop, no think time",
    )
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn processes (gunicorn.conf.py: cores + 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn -k (gthread keeps connections alive)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--db-socket",
        default="",
        metavar="DIR",
        help="connect to PostgreSQL through its Unix socket in DIR (e.g. /var/run/postgresql) instead of TCP",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the database a --keep run left (skips the 20 s build)"
    )
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="hpbench-bench-annot-"))
    env = _setup_env(var_dir, args.db_socket)
    if not args.reuse:
        _recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotate.models import Campaign

    if args.reuse and Campaign.objects.filter(slug__startswith="bench-").count() == 2:
        slugs = {c.comparisons.count(): c.slug for c in Campaign.objects.filter(slug__startswith="bench-")}
    else:
        slugs = _build(100_000)
    _count_queries(slugs)
    _write_costs(slugs[100_000])
    from annotate.models import Vote

    before = Vote.objects.filter(comparison__campaign__slug=slugs[100_000]).count()

    server = _start_gunicorn(
        env, port=args.port, workers=args.workers, threads=args.threads, worker_class=args.worker_class
    )
    try:
        base = f"http://127.0.0.1:{args.port}"
        slug = slugs[100_000]
        print(
            f"\nload: {args.annotators} annotators, {args.duration:.0f} s, gunicorn -w {args.workers} "
            f"-k {args.worker_class} --threads {args.threads}, campaign {slug}, "
            + (f"paced at {args.rate:g} votes/s offered" if args.rate else "closed loop (no think time)")
        )
        # uvloop: the generator shares the cores with the server, so its own CPU per request matters.
        stats = uvloop.run(_load("127.0.0.1", args.port, slug, args.annotators, args.duration, args.rate))
        _sequential(base, slug)  # its 200 votes are subtracted below
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    from django.db import connection
    from django.db.models import Count

    from annotate.models import Comparison, Vote

    # Minus the votes cast before the load and the sequential phase's 200.
    in_db = Vote.objects.filter(comparison__campaign__slug=slug).count() - before - 200
    duplicates = Vote.objects.values("annotator", "comparison").annotate(n=Count("id")).filter(n__gt=1).count()
    overfilled = Comparison.objects.filter(campaign__slug=slug).annotate(n=Count("votes")).filter(n__gt=3).count()
    drift = sum(
        1
        for c in Comparison.objects.filter(campaign__slug=slug, votes_count__gt=0).annotate(n=Count("votes"))
        if c.n != c.votes_count
    )
    connection.close()
    acked = stats["acked"]
    elapsed = stats["elapsed"]
    print(
        f"\nvotes acknowledged: {acked}; {stats['acked_in_window']} within the {args.duration:.0f} s window"
        f" = {stats['acked_in_window'] / args.duration:.0f} votes/s (the last requests finished after {elapsed:.1f} s)"
    )
    print(
        f"next-task latency ms: p50 {_pct(stats['next_ms'], 50):.1f}  p90 {_pct(stats['next_ms'], 90):.1f}  "
        f"p99 {_pct(stats['next_ms'], 99):.1f}  (n={len(stats['next_ms'])})"
    )
    print(
        f"vote latency ms:      p50 {_pct(stats['vote_ms'], 50):.1f}  p90 {_pct(stats['vote_ms'], 90):.1f}  "
        f"p99 {_pct(stats['vote_ms'], 99):.1f}  (n={len(stats['vote_ms'])})"
    )
    print(f"votes in the database for the load: {in_db} (acknowledged {acked})")
    print(
        f"duplicate (annotator, comparison) votes: {duplicates}; comparisons over 3 votes: {overfilled}; "
        f"counter drift: {drift}"
    )
    print(f"errors: {stats['errors'] or 'none'}")
    cpu = stats["cpu_s"]
    if acked:
        print(
            "CPU per vote (ms): "
            + ", ".join(f"{group} {seconds * 1000 / acked:.2f}" for group, seconds in cpu.items())
            + f"; cores busy {sum(cpu.values()) / elapsed:.2f} of {os.cpu_count()}"
        )
    if stats["next_ms"]:
        print(f"mean next {statistics.mean(stats['next_ms']):.1f} ms")
    if not args.keep:
        _recreate_database(drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)  # this run's media and broker folders
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
