"""Trust report (issue 14's figures): the vote path under faults, bad inputs, and who can reach what.

    .venv/bin/python bench/trust_report.py [--quick] [--port 8200] [--redis-port 8290] [--sections votes,inputs,matrix]

Everything runs on 127.0.0.1, in bounded loops, on a private PostgreSQL database (``hpbench_bench_trust``,
dropped at the end), a private ``redis-server`` on ``--redis-port`` (the web server's cache: sessions and crowd
entry counts; the shared Redis on 6379 is never restarted) and gunicorn on ``--port``. It reuses
bench/annotate_load.py's set-up (environment, database, catalogue and campaign, gunicorn) and its HTTP client.

Tables printed:
1. votes sent / acknowledged / stored under each fault (none; gunicorn worker SIGKILL; PostgreSQL backends
   terminated; the private Redis restarted; gunicorn on a SQLite file), with duplicates, comparisons over their
   overlap and slot-invariant breaks (``open_slots + live leases + votes_count == votes_per_pair``). A client
   retries a vote whose answer was lost with the same idempotency key (as the annotation page does), so
   "acknowledged" counts distinct keys answered 201/200 and "stored" the rows holding the keys sent;
2. jobs (retrieval, scoring, training) whose pool child or whole worker was SIGKILLed mid-job, and how each
   ended (tests/worker/test_lost_workers.py's real workers, run and tabulated);
3. bad inputs sent over HTTP, with the status each got (400/413/429 expected, never 5xx);
4. endpoint x role: every URL route (walked from the URL conf, ids filled with real objects) requested by each
   role, GET and, for views with write methods, POST/DELETE; a cell that contradicts the intended rights is
   marked ``!``.
``--quick`` shrinks everything to seconds (tests/bench/test_trust_report.py runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import annotate_load as load  # noqa: E402  (bench/ is not a package)

ROOT = load.ROOT
_ENV_AT_START = dict(os.environ)  # before annotate_load's set-up: the jobs section's pytest run gets this one
DB_NAME = "hpbench_bench_trust"
ROLES = ("anon", "crowd", "annot", "res", "other", "staff")


# ---------------------------------------------------------------------------------------------------- services


def _redis_start(port: int) -> subprocess.Popen:
    """A private redis-server on ``port`` (no persistence); returns once it answers PING."""
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    return proc


def _children(pid: int) -> list[int]:
    kids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(proc.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------------------- votes


async def _faulty_load(port: int, slug: str, annotators: int, duration: float) -> dict:
    """Annotators loop next-task -> vote for ``duration`` s; a request whose connection breaks or that gets a 5xx
    is retried (the vote with the same key) up to 5 times. Returns the keys sent and acknowledged, and errors."""
    sent: set[str] = set()
    acked: set[str] = set()
    errors: dict[str, int] = {}
    run = uuid.uuid4().hex[:8]
    deadline = time.perf_counter() + duration

    def error(key: str) -> None:
        errors[key] = errors.get(key, 0) + 1

    async def call(http: load._Connection, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        for attempt in range(6):
            try:
                status, answer = await asyncio.wait_for(http.request(method, path, body), timeout=15)
            except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError, IndexError) as exc:
                error(f"{path.split('?')[0].rsplit('/', 1)[-1]}: {type(exc).__name__}")
                await http.close()
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if status >= 500:
                error(f"{path.split('?')[0].rsplit('/', 1)[-1]} {status}")
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            return status, answer
        return 0, b""

    async def one(i: int) -> None:
        http = load._Connection("127.0.0.1", port)
        try:
            status, _ = await call(
                http,
                "GET",
                f"/api/annotate/campaigns/{slug}/enter?PROLIFIC_PID={run}-{i}&STUDY_ID=bench&SESSION_ID=s{run}{i}",
            )
            if status != 200:
                error(f"enter {status}")
                return
            while time.perf_counter() < deadline:
                status, body = await call(http, "POST", f"/api/annotate/campaigns/{slug}/next")
                if status != 200:
                    error(f"next {status}")
                    await asyncio.sleep(0.2)
                    continue
                task = json.loads(body)["task"]
                if task is None:
                    return
                key = uuid.uuid4().hex
                sent.add(key)
                vote = json.dumps({"lease": task["lease"], "choice": "left", "idempotency_key": key}).encode()
                status, _ = await call(http, "POST", "/api/annotate/votes", vote)
                if status in (200, 201):
                    acked.add(key)
                elif status:
                    error(f"vote {status}")
        finally:
            await http.close()

    await asyncio.gather(*(one(i) for i in range(annotators)))
    return {"sent": sent, "acked": acked, "errors": errors}


def _injector(fault: str, *, server: subprocess.Popen, redis: list, redis_port: int, every: float, stop) -> dict:
    """Inject ``fault`` every ``every`` seconds until ``stop`` is set; returns how many times it struck."""
    import psycopg2

    count = {"n": 0}

    def strike() -> None:
        if fault == "worker SIGKILL":
            kids = _children(server.pid)
            if kids:
                os.kill(random.choice(kids), signal.SIGKILL)
                count["n"] += 1
        elif fault == "PG backend kill":
            conn = psycopg2.connect(f"{load.PG}/postgres")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", [DB_NAME]
                )
                count["n"] += cur.fetchone()[0]
            conn.close()
        elif fault == "Redis restart":
            redis[0].kill()
            redis[0].wait()
            time.sleep(0.3)
            redis[0] = _redis_start(redis_port)
            count["n"] += 1

    def loop() -> None:
        while not stop.wait(every):
            strike()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    count["thread"] = thread
    return count


def _vote_row(fault: str, stats: dict, slug: str, strikes: int) -> dict:
    """Count what the database holds for the keys sent (Django configured on the database under test)."""
    from django.db import connection
    from django.db.models import Count, F

    from annotate.models import Assignment, Comparison, Vote

    keys = list(stats["sent"])
    stored_keys = set()
    for i in range(0, len(keys), 5000):
        stored_keys |= set(
            Vote.objects.filter(idempotency_key__in=keys[i : i + 5000]).values_list("idempotency_key", flat=True)
        )
    comparisons = Comparison.objects.filter(campaign__slug=slug)
    duplicates = (
        Vote.objects.filter(comparison__campaign__slug=slug)
        .values("annotator", "comparison")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    overfilled = comparisons.annotate(n=Count("votes")).filter(n__gt=F("campaign__votes_per_pair")).count()
    leased = dict(
        Assignment.objects.filter(comparison__campaign__slug=slug, state="leased")
        .values_list("comparison")
        .annotate(n=Count("id"))
    )
    broken = 0
    for pk, slots, votes_count, wanted, n_votes in comparisons.annotate(n=Count("votes")).values_list(
        "pk", "open_slots", "votes_count", "campaign__votes_per_pair", "n"
    ):
        if slots + leased.get(pk, 0) + votes_count != wanted or votes_count != n_votes:
            broken += 1
    connection.close()
    return {
        "fault": fault,
        "strikes": strikes,
        "sent": len(keys),
        "acked": len(stats["acked"]),
        "stored": len(stored_keys),
        "acked_lost": len(stats["acked"] - stored_keys),
        "dup": duplicates,
        "over": overfilled,
        "slot_breaks": broken,
        "errors": stats["errors"],
        "5xx": sum(n for key, n in stats["errors"].items() if re.search(r" 5\d\d$", key)),
    }


def _print_votes(rows: list[dict]) -> None:
    print(
        "\n== 1. Votes under faults (acked = distinct keys answered 201/200; stored = rows with a key sent;"
        " 5xx = answers retried by the client) =="
    )
    head = (
        f"{'fault':<22}{'strikes':>8}{'sent':>7}{'acked':>7}{'stored':>7}{'acked lost':>11}{'dup':>5}{'over':>6}"
        f"{'slot breaks':>12}{'5xx':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['fault']:<22}{r['strikes']:>8}{r['sent']:>7}{r['acked']:>7}{r['stored']:>7}{r['acked_lost']:>11}"
            f"{r['dup']:>5}{r['over']:>6}{r['slot_breaks']:>12}"
            f"{r['5xx']:>6}"
        )
    for r in rows:
        if r["errors"]:
            print(f"  {r['fault']}: client-side errors/retries {dict(sorted(r['errors'].items()))}")


def _votes_postgres(args, server: subprocess.Popen, slug: str, redis: list) -> list[dict]:
    """One load per fault against the running gunicorn (its master restarts the workers a fault kills)."""
    rows = []
    for fault in args.faults.split(","):
        stop = threading.Event()
        strikes = {"n": 0}
        try:
            if fault != "none":
                strikes = _injector(
                    fault, server=server, redis=redis, redis_port=args.redis_port, every=args.every, stop=stop
                )
            stats = asyncio.run(_faulty_load(args.port, slug, args.annotators, args.duration))
        finally:
            stop.set()
            if "thread" in strikes:
                strikes["thread"].join(timeout=10)
        rows.append(_vote_row(fault, stats, slug, strikes["n"]))
    return rows


def _votes_sqlite_child(args) -> int:
    """Run in a child process: gunicorn on a SQLite file, many annotators; prints the row as JSON."""
    var_dir = Path(tempfile.mkdtemp(prefix="hpbench-bench-trust-sqlite-"))
    env = load._setup_env(var_dir, db_name=DB_NAME, cache_url=f"redis://127.0.0.1:{args.redis_port}/2")
    env["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
    env["LOG_LEVEL"] = "ERROR"
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            slugs = load._build(args.queries, sizes=(args.queries,))
        finally:
            sys.stdout = stdout
    slug = next(iter(slugs.values()))
    server = load._start_gunicorn(env, port=args.port, workers=3, threads=2)
    try:
        stats = asyncio.run(_faulty_load(args.port, slug, args.sqlite_annotators, args.duration))
    finally:
        _stop(server)
    row = _vote_row(f"SQLite, {args.sqlite_annotators} annot.", stats, slug, 0)
    print("ROW " + json.dumps(row))
    shutil.rmtree(var_dir, ignore_errors=True)
    return 0


def _votes_sqlite(args) -> dict:
    cmd = [sys.executable, __file__, "--sqlite-child", "--port", str(args.port + 1),
           "--redis-port", str(args.redis_port),
           "--duration", str(args.duration), "--queries", str(args.queries),
           "--sqlite-annotators", str(args.sqlite_annotators)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("ROW "):
            return json.loads(line[4:])
    raise RuntimeError(f"the SQLite run printed no row:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")


# ---------------------------------------------------------------------------------------------------- jobs

_JOB_LINE = re.compile(r"^(RetrievalRun|ModelScore|training) x (.+?): (\w+)[, ]*(.*)$")
_JOB_KIND = {"RetrievalRun": "retrieval", "ModelScore": "scoring", "training": "training"}


def _jobs() -> tuple[list[tuple[str, str, str, str]], str]:
    """Real Celery workers (prefork gpu worker, beat and the reaper on a solo worker) with jobs held mid-run, then
    a pool child or the whole worker SIGKILLed: tests/worker/test_lost_workers.py does exactly that on its own test
    database and prints how each job ended; this runs it and tabulates those lines. Returns (rows, summary)."""
    test = ROOT / "tests" / "worker" / "test_lost_workers.py"
    if not test.exists():
        return [], "tests/worker/test_lost_workers.py is missing (branch jobs not merged)"
    env = {**_ENV_AT_START, "HPBENCH_TEST_DB_NAME": "test_bench_trust_jobs", "PYTHONUNBUFFERED": "1"}
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "CACHE_URL", "HPBENCH_VAR_DIR"):
        env.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(test), "-s", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    rows = []
    for line in out.stdout.splitlines():
        match = _JOB_LINE.match(line.strip().lstrip(".").strip())
        if match:
            kind, kill, ended, detail = match.groups()
            rows.append((_JOB_KIND[kind], kill, ended, detail))
    summary = next((line for line in reversed(out.stdout.splitlines()) if " in " in line and "=" not in line), "")
    return rows, summary or out.stdout[-300:]


def _print_jobs(rows, summary: str) -> None:
    print("\n== 2. Jobs whose worker was SIGKILLed mid-job (heartbeat 1 s, stale after 6 s, reaper every 1 s) ==")
    print(f"{'job':<11}{'kill':<34}{'ended':<10}how")
    print("-" * 110)
    for kind, kill, ended, detail in rows:
        print(f"{kind:<11}{kill:<34}{ended:<10}{detail}")
    print(f"(tests/worker/test_lost_workers.py: {summary.strip()})")


# ---------------------------------------------------------------------------------------------------- fixtures


class World:
    """The objects and the role clients the input and matrix sections use."""

    def __init__(self, base: str, slug: str) -> None:
        import httpx
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from annotate.models import Campaign
        from annotate.services.campaign_build import campaign_build
        from annotate.services.campaigns import campaign_create, campaign_set_status
        from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
        from hpbench.exports.models import ExportJob
        from hpbench.leaderboard.models import Submission

        users = get_user_model().objects
        tag = uuid.uuid4().hex[:6]
        self.users = {
            "annot": users.create_user(username=f"annot-{tag}", password=secrets.token_hex(8)),
            "res": users.create_user(username=f"res-{tag}", password=secrets.token_hex(8)),
            "other": users.create_user(username=f"other-{tag}", password=secrets.token_hex(8)),
            "staff": users.create_user(username=f"staff-{tag}", password=secrets.token_hex(8), is_staff=True),
        }
        self.tokens = {role: Token.objects.create(user=user).key for role, user in self.users.items()}
        self.campaign = Campaign.objects.get(slug=slug)
        dataset = Dataset.objects.get(name="bench")
        # A small guarded campaign: pinned study, session required, 3 new identities an hour.
        guarded = campaign_create(
            slug=f"guarded-{tag}", name="guarded", dataset=dataset, models=list(ModelEntry.objects.all()[:2]),
            num_queries=5, gold_share=0.0, per_person_quota=0, votes_per_pair=3, crowd_study_ids="bench",
            require_crowd_session=True, new_annotators_per_hour=3,
        )  # fmt: skip
        campaign_build(campaign=guarded)
        campaign_set_status(campaign=guarded, status=Campaign.Status.OPEN)
        self.guarded = guarded.slug
        model = ModelEntry.objects.create(name=f"sub-{tag}", family=ModelEntry.Family.DEMO)
        self.submission = Submission.objects.create(owner=self.users["res"], family="demo", model=model)
        self.export = ExportJob.objects.create(requested_by=self.users["staff"], format="jsonl")
        from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store

        ids = list(Image.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)[:4])
        pair = PairSpec(reference_id=ids[0], text="is red", set1=(ids[1],), set2=(ids[2], ids[3]), preference=1)
        self.benchmark = benchmark_store(name=f"bm-{tag}", source="imported", dataset=dataset, pairs=[pair]).benchmark
        self.run = RetrievalRun.objects.first()
        self.query = Query.objects.first()
        self.dataset = dataset
        self.base = base
        self.clients = {}
        csrf = secrets.token_hex(16)
        for role in ROLES:
            client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
            client.cookies.set("csrftoken", csrf)
            client.headers["X-CSRFToken"] = csrf
            if role in self.users:
                client.cookies.set("sessionid", self._session(self.users[role]))
            self.clients[role] = client
        crowd = self.clients["crowd"]
        r = crowd.get(f"/api/annotate/campaigns/{slug}/enter", params={
            "PROLIFIC_PID": f"crowd-{tag}", "STUDY_ID": "bench", "SESSION_ID": f"s-{tag}"})  # fmt: skip
        assert r.status_code == 200, r.text
        task = crowd.post(f"/api/annotate/campaigns/{slug}/next").json()["task"]
        self.lease = task["lease"]
        self.image_token = _find_alias(task)
        print(f"(campaign image token {self.image_token}: the bench's images have no files, so 404 for everyone)")

    @staticmethod
    def _session(user) -> str:
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return store.session_key

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _find_alias(task) -> str:
    text = json.dumps(task)
    match = re.search(r"/images/a/([^\"?]+)", text)
    return match.group(1) if match else "none"


# ---------------------------------------------------------------------------------------------------- bad inputs


def _raw(port: int, head: bytes, body: bytes = b"", wait: float = 10) -> int:
    """Send raw bytes, return the answer's status (0: the connection closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(head + body)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return 0
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def _safetensors_header(size: int) -> bytes:
    items = max(1, (size - 2) // 3)
    header = b"[" + b"[]," * (items - 1) + b"[]]"
    return struct.pack("<Q", len(header)) + header


def _bad_inputs(world: World, port: int, quick: bool) -> list[tuple[str, str, int, str]]:
    """Each bad input over HTTP: (kind, what, status, first bytes of the answer)."""
    crowd, res = world.clients["crowd"], world.clients["res"]
    token = {"Authorization": f"Token {world.tokens['res']}"}
    slug = world.campaign.slug
    rows = []

    def add(kind: str, what: str, response) -> None:
        rows.append((kind, what, response.status_code, response.text[:70].replace("\n", " ")))

    def tiny() -> dict:
        return {"file": ("m.safetensors", _safetensors_header(64))}

    def vote(raw: bytes):
        return crowd.post("/api/annotate/votes", content=raw, headers={"Content-Type": "application/json"})

    lease = world.lease
    add(
        "idempotency key",
        "NUL in key",
        vote(json.dumps({"lease": lease, "choice": "left", "idempotency_key": "a\x00b"}).encode()),
    )
    add(
        "idempotency key",
        "lone surrogate",
        vote(b'{"lease": "%s", "choice": "left", "idempotency_key": "a\\ud800"}' % lease.encode()),
    )
    add("JSON body", "nested 5,000 deep", vote(b"[" * 5000 + b"]" * 5000))
    add("JSON body", "not JSON", vote(b"{nope"))
    add(
        "JSON body",
        "choice 'maybe'",
        vote(json.dumps({"lease": lease, "choice": "maybe", "idempotency_key": "k1"}).encode()),
    )
    add(
        "JSON body",
        "3 MB string",
        vote(json.dumps({"lease": lease, "choice": "left", "idempotency_key": "x" * 3_000_000}).encode()),
    )
    add("JSON body", "11 MB (over upload limit)", vote(b'{"a": "' + b"x" * (11 * 1024 * 1024) + b'"}'))
    add("query param", "results ?k=abc", crowd.get(f"/api/queries/{world.query.pk}/results", params={"k": "abc"}))
    add("query param", "results ?k=-1", crowd.get(f"/api/queries/{world.query.pk}/results", params={"k": "-1"}))
    add("query param", "healthz ?timeout=abc", crowd.get("/healthz", params={"timeout": "abc"}))
    add("URL", "NUL in slug path", crowd.get("/api/annotate/campaigns/a%00b/enter"))
    head = (
        "POST /api/leaderboard/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Token {world.tokens['res']}\r\n"
        "Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: 4294967296\r\n\r\n"
    ).encode()
    rows.append(("upload", "Content-Length 4 GiB (64 KiB sent)", _raw(port, head, b"x" * 65536), ""))
    header = _safetensors_header(3_000_000 if quick else 30_000_000)
    add("upload", f"safetensors header {len(header) // 1_000_000} MB of [],[],…",
        res.post("/api/leaderboard/submissions", headers=token, data={"family": "demo"},
                 files={"file": ("m.safetensors", header)}))  # fmt: skip
    add("upload", "8-byte file (no header)", res.post("/api/leaderboard/submissions", headers=token,
        data={"family": "demo"}, files={"file": ("m.safetensors", b"\x00" * 8)}))  # fmt: skip
    add("upload", "pickle (.pt)", res.post("/api/leaderboard/submissions", headers=token, data={"family": "demo"},
        files={"file": ("m.pt", b"\x80\x04cos\nsystem\n.")}))  # fmt: skip
    for config in ('{"clip_folder": "/etc"}', '{"clip_checkpoint": "/var/lib/x.safetensors"}', '{"max_bytes": 1e12}',
                   "[" * 5000 + "]" * 5000):  # fmt: skip
        add("config", config[:34], res.post("/api/leaderboard/submissions", headers=token,
            data={"family": "demo", "config": config}, files=tiny()))  # fmt: skip
    add("link", "javascript: (API)", res.post("/api/leaderboard/submissions", headers=token,
        data={"family": "demo", "link": "javascript:alert(1)"}, files=tiny()))  # fmt: skip
    add("link", "javascript: (HTML form)", res.post("/submissions/",
        data={"family": "demo", "link": "javascript:alert(1)"}, files=tiny()))  # fmt: skip
    import httpx

    with httpx.Client(base_url=world.base, timeout=30) as anon:
        add("crowd entry", "PID only (no study/session)", anon.get(f"/api/annotate/campaigns/{world.guarded}/enter",
            params={"PROLIFIC_PID": "lonely"}))  # fmt: skip
        add("crowd entry", "study not pinned", anon.get(f"/api/annotate/campaigns/{world.guarded}/enter",
            params={"PROLIFIC_PID": "p0", "STUDY_ID": "other", "SESSION_ID": "s0"}))  # fmt: skip
        add("crowd entry", "PID with NUL", anon.get(f"/api/annotate/campaigns/{slug}/enter",
            params={"PROLIFIC_PID": "a\x00b", "STUDY_ID": "bench", "SESSION_ID": "sn"}))  # fmt: skip
    statuses = []
    for i in range(5):
        with httpx.Client(base_url=world.base, timeout=30) as fresh:
            statuses.append(fresh.get(f"/api/annotate/campaigns/{world.guarded}/enter",
                params={"PROLIFIC_PID": f"rate{i}", "STUDY_ID": "bench", "SESSION_ID": f"rs{i}"}
            ).status_code)  # fmt: skip
    rows.append(("crowd entry", "5 new identities, campaign limit 3/h", statuses[-1], f"all: {statuses}"))
    return rows


def _votes_of_lease(lease: str) -> int:
    """Votes stored for the crowd client's lease (every bad vote used it): 0 expected."""
    from django.db import connection

    from annotate.models import Vote

    count = Vote.objects.filter(idempotency_key__in=["a\x00b".replace("\x00", ""), "k1"]).count()
    connection.close()
    return count


def _print_inputs(rows, stored_bad: int) -> None:
    print("\n== 3. Bad inputs over HTTP (status returned; any 5xx or 0 = no answer is a failure) ==")
    head = f"{'kind':<16}{'input':<40}{'status':>7}  answer"
    print(head)
    print("-" * 110)
    for kind, what, status, text in rows:
        mark = "  !" if status >= 500 or status == 0 or 200 <= status < 300 and kind != "crowd entry" else ""
        print(f"{kind:<16}{what:<40}{status:>7}{mark}  {text}")
    print(f"votes stored from the bad vote bodies: {stored_bad}")


# ---------------------------------------------------------------------------------------------------- matrix

# Intended rights, first match wins: (route regex, who may read, who may write).
_PUBLIC = set(ROLES)
_ACCOUNTS = {"annot", "res", "other", "staff"}
_OWNER = {"res", "staff"}
_STAFF = {"staff"}
RIGHTS = [
    (r"^admin/", _STAFF, _STAFF),
    (r"exports", _STAFF, _STAFF),
    (r"^api/annotate/campaigns/(<slug:slug>)?$", _STAFF, _STAFF),
    (r"^api/annotate/campaigns/<slug:slug>/(next|enter|onboarded)$", _PUBLIC, _PUBLIC),
    (r"^campaigns/", _STAFF, _STAFF),  # a campaign's monitor and preview pages
    (r"^api/annotate/votes$", _PUBLIC, {"crowd"}),
    (r"submissions/<int:pk>", _OWNER, _OWNER),
    (r"submissions|requests/|^account/|^researchers|token", _ACCOUNTS, _ACCOUNTS),
    (r"^accounts/", _PUBLIC, _PUBLIC),
    (r"", _PUBLIC, _STAFF),
]


def _routes() -> list[tuple[str, object]]:
    from django.urls import URLPattern, URLResolver, get_resolver

    out = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            route = str(p.pattern)
            if isinstance(p, URLResolver):
                if prefix + route == "admin/":
                    continue  # the admin: a few of its pages below, not its hundreds of routes
                walk(p.url_patterns, prefix + route)
            elif isinstance(p, URLPattern):
                out.append((prefix + route, p.callback))

    walk(get_resolver().url_patterns, "")
    out += [("admin/", None), ("admin/auth/user/", None), ("admin/annotate/vote/", None)]
    return out


def _fill(route: str, world: World) -> str:
    values = {
        "slug": world.campaign.slug,
        "query_id": world.query.pk,
        "pk": world.submission.pk,
        "image_id": world.query.reference_id,
        "token": world.image_token,
        "job_id": world.export.pk,
        "name": world.benchmark.name,
        "split": "val",
        "uidb64": "x",
        "action": "cancel",
    }

    def value(match) -> str:
        name = match.group(2)
        if "runs/" in route and name == "pk":
            return str(world.run.pk)
        if "download" in route:
            return world.export.token
        if "datasets/" in route and name == "name":
            return world.dataset.name
        return str(values.get(name, "1"))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route).replace("^", "").replace("$", "")


def _methods(callback) -> list[str]:
    cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if cls is None:  # a function view: the page actions (POST only) are its write routes
        return ["POST"] if getattr(callback, "__name__", "").endswith("action") else []
    return [m.upper() for m in ("post", "delete") if hasattr(cls, m)]


def _matrix(world: World) -> list[tuple[str, dict, str]]:
    rows = []
    writes = []
    for route, callback in _routes():
        if route.startswith("accounts/") and "login" not in route:
            continue  # password reset/change and logout: Django's own views
        path = _fill(route, world)
        cells = {}
        for role in ROLES:
            cells[role] = {"GET": world.clients[role].get(path).status_code}
        rows.append((route, cells, path))
        methods = _methods(callback) if callback else []
        if "api/docs" in route or "schema" in route:
            methods = []
        writes.append((route, path, methods, cells))
    for _route, path, methods, cells in writes:  # writes after every read (a cancel changes what later reads see)
        for method in methods:
            for role in ROLES:
                client = world.clients[role]
                if method == "POST":
                    r = client.post(path, json={}) if path.startswith("/api/") else client.post(path, data={})
                else:
                    r = client.delete(path)
                cells[role][method] = r.status_code
    return rows


def _allowed(route: str) -> tuple[set, set]:
    for pattern, read, write in RIGHTS:
        if re.search(pattern, route):
            return read, write
    return _PUBLIC, _STAFF


def _print_matrix(rows) -> int:
    print("\n== 4. Endpoint x role (GET status; P: POST, D: DELETE; ! = contradicts the intended rights) ==")
    print(
        "roles: anon = no cookie; crowd = entered a campaign (signed cookie); annot = logged-in account without "
        "submissions; res = researcher owning the submission; other = another researcher; staff = is_staff"
    )
    print(
        "intended: admin, exports, campaign list/detail, monitor and preview: staff only; a submission (detail, "
        "scores, file, cancel, publish): its owner and staff; submitting and score requests: accounts; votes and "
        "onboarding: crowd (and accounts); "
        "catalogue, leaderboards, query pages, images: public reads; a read that is not allowed must answer "
        "302 (to login), 401, 403 or 404"
    )
    width = 13
    print(f"{'route':<58}" + "".join(f"{r:>{width}}" for r in ROLES))
    flags = 0
    for route, cells, _path in rows:
        read, write = _allowed(route)
        line = f"{'/' + route[:56]:<58}"
        for role in ROLES:
            parts = []
            for method, status in cells[role].items():
                may = role in (read if method == "GET" else write)
                # healthz answers 503 here by design: no Celery worker answers its ping in this bench.
                bad = (200 <= status < 300 and not may) or (status >= 500 and route != "healthz")
                flags += bad
                parts.append(f"{'' if method == 'GET' else method[0] + ':'}{status}{'!' if bad else ''}")
            line += f"{' '.join(parts):>{width}}"
        print(line)
    print(f"cells contradicting the intended rights: {flags}")
    return flags


# ---------------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (the test's mode)")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--redis-port", type=int, default=8290)
    parser.add_argument("--sections", default="votes,sqlite,inputs,matrix,jobs")
    parser.add_argument("--faults", default="none,worker SIGKILL,PG backend kill,Redis restart")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds of load per fault")
    parser.add_argument("--annotators", type=int, default=0)
    parser.add_argument("--sqlite-annotators", type=int, default=0)
    parser.add_argument("--every", type=float, default=0.0, help="seconds between two strikes of a fault")
    parser.add_argument("--queries", type=int, default=0)
    parser.add_argument("--sqlite-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.duration = args.duration or (3.0 if args.quick else 20.0)
    args.annotators = args.annotators or (8 if args.quick else 50)
    args.sqlite_annotators = args.sqlite_annotators or (8 if args.quick else 50)
    args.every = args.every or (1.0 if args.quick else 3.0)
    args.queries = args.queries or (300 if args.quick else 5000)
    if args.sqlite_child:
        return _votes_sqlite_child(args)
    sections = set(args.sections.split(","))

    if "jobs" in sections:  # first, before this process's own set-up (it runs on a test database of its own)
        job_rows, summary = _jobs()
        failures_jobs = sum(1 for row in job_rows if row[2] != "finished" and "third loss" not in row[1])
    else:
        failures_jobs = 0
    redis = [_redis_start(args.redis_port)]
    var_dir = Path(tempfile.mkdtemp(prefix="hpbench-bench-trust-"))
    env = load._setup_env(var_dir, db_name=DB_NAME, cache_url=f"redis://127.0.0.1:{args.redis_port}/1")
    env["LOG_LEVEL"] = os.environ["LOG_LEVEL"] = "ERROR"  # not a line per refused request
    load._recreate_database(db_name=DB_NAME)
    failures = failures_jobs
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        slugs = load._build(args.queries, sizes=(args.queries,))
        slug = next(iter(slugs.values()))
        server = load._start_gunicorn(env, port=args.port, workers=3, threads=2)
        try:
            vote_rows = []
            if "votes" in sections:
                vote_rows += _votes_postgres(args, server, slug, redis)
            if "sqlite" in sections:
                vote_rows.append(_votes_sqlite(args))
            if vote_rows:
                _print_votes(vote_rows)
                failures += sum(r["acked_lost"] + r["dup"] + r["over"] + r["slot_breaks"] for r in vote_rows)
            if "jobs" in sections:
                _print_jobs(job_rows, summary)
            if sections & {"inputs", "matrix"}:
                world = World(f"http://127.0.0.1:{args.port}", slug)
                if "inputs" in sections:
                    rows = _bad_inputs(world, args.port, args.quick)
                    _print_inputs(rows, _votes_of_lease(world.lease))
                    failures += sum(1 for r in rows if r[2] >= 500 or r[2] == 0)
                if "matrix" in sections:
                    failures += _print_matrix(_matrix(world))
                world.close()
        finally:
            _stop(server)
    finally:
        from django.db import connections

        connections.close_all()
        load._recreate_database(drop_only=True, db_name=DB_NAME)
        redis[0].kill()
        redis[0].wait()
        shutil.rmtree(var_dir, ignore_errors=True)
    print(
        "\nfailures (acknowledged votes lost, duplicates, over-filled, slot breaks, 5xx, access contradictions):"
        f" {failures}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
