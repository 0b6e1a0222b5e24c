"""Where one annotation vote's CPU goes: our services, Django + DRF, and gunicorn, measured side by side.

    .venv/bin/python bench/annotate_breakdown.py [--votes 500] [--rounds 3] [--keep] [--reuse]

A vote is one next-task request and one vote request, as in ``bench/annotate_load.py``, whose scratch
database this script shares (``--keep`` / ``--reuse`` as there). One annotator at a time, no queueing; each
layer adds to the one before:

1. **services**: ``annotate.services.next_task.assignment_next`` and ``annotate.services.votes.vote_record``
   called directly: the SQL and our Python around it;
2. **Django + DRF in-process**: the same two requests through ``hpbench.wsgi``'s application, called with
   WSGI environs (the short middleware stack, session, CSRF check, DRF views, JSON answers), no server;
3. **gunicorn**: the same requests over HTTP (one keep-alive connection per annotator) to one gunicorn
   worker started with the project's ``gunicorn.conf.py`` (gthread).

The CPU of this process (layers 1 and 2), of the gunicorn worker (layer 3) and of PostgreSQL is read from
/proc. One request at a time costs more CPU than the same request under load (each one wakes idle
processes), so compare the layers' shares with each other, not these totals with annotate_load's. The
rounds alternate the layers so that the machine's drift falls on all of them alike; the figures printed are
each layer's median over the rounds. The budget line says what 400 votes/s on this machine's cores leaves
per vote for everything (web process, PostgreSQL and load generator) at 100% busy.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotate_load import ROOT, _build, _CpuMeter, _recreate_database, _setup_env  # noqa: E402

N_ANNOTATORS = 4


def _crowd_link(pid: str) -> dict[str, str]:
    """A Prolific link's parameters, as campaigns require them (study and session)."""
    return {"PROLIFIC_PID": pid, "STUDY_ID": "bench", "SESSION_ID": f"s-{pid}"}


class _Services:
    """Layer 1: the service functions, as the views call them."""

    def __init__(self, slug: str) -> None:
        from annotate.models import Campaign
        from annotate.services import next_task, votes
        from annotate.services.entry import annotator_enter

        self.next_task, self.votes, self.slug = next_task, votes, slug
        campaign = Campaign.objects.get(slug=slug)
        self.ids = [
            annotator_enter(campaign=campaign, params=_crowd_link(f"svc-{uuid.uuid4().hex[:8]}")).pk
            for _ in range(N_ANNOTATORS)
        ]

    def vote(self, k: int) -> None:
        annotator_id = self.ids[k % N_ANNOTATORS]
        task = self.next_task.assignment_next(annotator_id=annotator_id, campaign_slug=self.slug).task
        caller = self.votes.Caller(annotator_ids=frozenset({annotator_id}))
        self.votes.vote_record(
            lease=task.lease, caller=caller, choice="left", idempotency_key=uuid.uuid4().hex, time_ms=1000
        )


class _OverTheAPI:
    """Layers 2 and 3: one vote is a next-task request, then a vote request, as annotator ``k`` (taking turns)."""

    slug: str

    def _post(self, k: int, path: str, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    def vote(self, k: int) -> None:
        status, content = self._post(k, f"/api/annotate/campaigns/{self.slug}/next", b"")
        assert status == 200, content
        lease = json.loads(content)["task"]["lease"]
        body = {"lease": lease, "choice": "left", "time_ms": 1000, "idempotency_key": uuid.uuid4().hex}
        status, content = self._post(k, "/api/annotate/votes", json.dumps(body).encode())
        assert status == 201, content


class _InProcessWSGI(_OverTheAPI):
    """Layer 2: hpbench.wsgi's application called directly, with the environ a server would build."""

    def __init__(self, slug: str) -> None:
        from hpbench.wsgi import application

        self.app, self.slug = application, slug
        self.cookies = []
        for _ in range(N_ANNOTATORS):
            cookies: dict[str, str] = {}
            link = urlencode(_crowd_link(f"wsgi-{uuid.uuid4().hex}"))
            status, _ = self._call("GET", f"/api/annotate/campaigns/{slug}/enter", cookies, query=link)
            assert status == 200, status
            self.cookies.append(cookies)

    def _call(self, method: str, path: str, cookies: dict, body: bytes = b"", query: str = "") -> tuple[int, bytes]:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            environ["HTTP_X_CSRFTOKEN"] = cookies.get("csrftoken", "")
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = int(status.split()[0]), headers

        content = b"".join(self.app(environ, start_response))
        for name, value in answer["headers"]:
            if name.lower() == "set-cookie":
                key, _, rest = value.strip().partition("=")
                cookies[key] = rest.split(";", 1)[0]
        return answer["status"], content

    def _post(self, k: int, path: str, body: bytes) -> tuple[int, bytes]:
        return self._call("POST", path, self.cookies[k % N_ANNOTATORS], body)


class _OverHTTP(_OverTheAPI):
    """Layer 3: one gunicorn worker, reached over keep-alive HTTP connections."""

    def __init__(self, slug: str, port: int, env: dict[str, str]) -> None:
        self.slug, self.port = slug, port
        cmd = [sys.executable, "-m", "gunicorn", "hpbench.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"]
        self.server = subprocess.Popen(cmd + ["--log-level", "warning"], cwd=ROOT, env={**os.environ, **env})
        for _ in range(150):
            try:
                self._connection().request("GET", "/admin/login/")
                break
            except OSError:
                time.sleep(0.2)
        self.clients = []
        for _ in range(N_ANNOTATORS):
            connection = self._connection()
            link = urlencode(_crowd_link(f"http-{uuid.uuid4().hex}"))
            connection.request("GET", f"/api/annotate/campaigns/{slug}/enter?{link}")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
            cookies = dict(
                value.split(";", 1)[0].strip().split("=", 1)
                for name, value in answer.getheaders()
                if name.lower() == "set-cookie"
            )
            headers = {
                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                "X-CSRFToken": cookies["csrftoken"],
                "Content-Type": "application/json",
            }
            self.clients.append((connection, headers))

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _post(self, k: int, path: str, body: bytes) -> tuple[int, bytes]:
        connection, headers = self.clients[k % N_ANNOTATORS]
        connection.request("POST", path, body, headers)
        answer = connection.getresponse()
        return answer.status, answer.read()

    def close(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.server.kill()


def _measure(layer, votes: int) -> dict[str, float]:
    """CPU ms per vote of this process, gunicorn and PostgreSQL while ``layer`` casts ``votes`` votes."""
    for k in range(20):  # warm: prepared statements, the session cache, the worker's code paths
        layer.vote(k)
    meter = _CpuMeter()
    for k in range(votes):
        layer.vote(k)
    spent = meter.read()
    return {
        "this process": spent["load generator"] * 1000 / votes,
        "gunicorn": spent["gunicorn"] * 1000 / votes,
        "postgres": spent["postgres"] * 1000 / votes,
        "redis": spent["redis"] * 1000 / votes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=500, help="votes per layer and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="reuse the database a --keep run left")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="hpbench-bench-breakdown-"))
    env = _setup_env(var_dir)
    if not args.reuse:
        _recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotate.models import Campaign

    if args.reuse and Campaign.objects.filter(slug="bench-100000").exists():
        slug = "bench-100000"
    else:
        slug = _build(100_000)[100_000]

    layers = {
        "services": _Services(slug),
        "Django + DRF in-process": _InProcessWSGI(slug),
        "gunicorn over HTTP": _OverHTTP(slug, args.port, {**env, "WEB_CONCURRENCY": "1"}),
    }
    # As gunicorn.conf.py's post_worker_init does in the web process, so that layers 1-2 compare like for like.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in layers}
    try:
        for _ in range(args.rounds):
            for name, layer in layers.items():
                results[name].append(_measure(layer, args.votes))
    finally:
        layers["gunicorn over HTTP"].close()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    own = {
        "services": median("services", "this process"),
        "Django + DRF in-process": median("Django + DRF in-process", "this process"),
        "gunicorn over HTTP": median("gunicorn over HTTP", "gunicorn"),
    }
    print(
        f"\nCPU per vote (next-task + vote), ms, median of {args.rounds} rounds of {args.votes} votes,"
        f" {N_ANNOTATORS} annotators taking turns (no queueing):"
    )
    print(f"  {'layer':<28} {'web CPU':>8} {'added':>7} {'share':>6} {'PostgreSQL':>11}")
    previous = 0.0
    total = own["gunicorn over HTTP"]
    for name, cpu in own.items():
        print(
            f"  {name:<28} {cpu:8.2f} {cpu - previous:7.2f} {(cpu - previous) / total:6.0%}"
            f" {median(name, 'postgres'):11.2f}"
        )
        previous = cpu
    client = median("gunicorn over HTTP", "this process")
    print(f"  (the HTTP client used {client:.2f} ms per vote in layer 3)")
    cores = os.cpu_count() or 1
    print(
        f"budget at 400 votes/s on {cores} cores: {cores * 1000 / 400:.2f} ms of CPU per vote for the web process,"
        f" PostgreSQL and the load generator together, at 100% busy; layer 3 here used"
        f" {total + median('gunicorn over HTTP', 'postgres') + median('gunicorn over HTTP', 'redis') + client:.2f}"
        f" (Redis {median('gunicorn over HTTP', 'redis'):.2f})"
    )
    if not args.keep:
        _recreate_database(drop_only=True)
    shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
