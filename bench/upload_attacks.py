"""Upload attacks against a live gunicorn on loopback: what each costs the web worker (peak RSS, CPU, bytes
written to disk), and what a checkpoint zip bomb costs the process that loads it.

    python bench/upload_attacks.py                         # the code of this checkout
    python bench/upload_attacks.py --root /path/to/old     # another checkout (e.g. main before the fix)
    python bench/upload_attacks.py --scale 0.25            # smaller files (quicker; figures scale roughly)

It recreates the database ``hpbench_bench_uploads``, migrates it with the served checkout's code, creates a
researcher with an API token and a three-pair benchmark, and starts gunicorn (one gthread worker, timeout
600 s) from ``--root``. Each attack is one request (bounded loops, loopback only); before it the worker's peak
RSS is reset (``/proc/<pid>/clear_refs``), after it the peak (``VmHWM``), the RSS left, the CPU seconds
(``/proc/<pid>/stat``) and the bytes it wrote (``/proc/<pid>/io``) are read. Where a score-file submission
was accepted and the checkout has the worker-side check (``worker.scorefiles.score_files_check_execute``),
that check is run too, in a process of its own: its CPU (child included) and the peak RSS of its child (an upper
bound: Linux counts the parent's RSS at the fork) and of itself are printed.

Attacks (the issue's sizes at ``--scale 1``): a Parquet file of a few KiB whose question column decodes to
1 GiB; 64 MiB of blank lines; one 60 MiB JSON line; a 60 MiB JSON ranking object; a 256 MiB anonymous
multipart body to ``/healthz``; a ``.pt`` zip archive of about 1 MiB whose member inflates to 1 GiB (uploaded,
then loaded by ``models_zoo.checkpoints.load_checkpoint_file`` in a process of its own).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
DB = "hpbench_bench_uploads"
PG = "postgres://postgres@127.0.0.1:5432"
MIB = 1024**2

SETUP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from hpbench.catalog.models import Dataset
from tests.leaderboard.scorefile_fixtures import tiny_benchmark
user = get_user_model().objects.create_user(username="attacker", password="attacker-pass-123")
print("TOKEN", Token.objects.create(user=user).key)
tiny_benchmark(Dataset.objects.create(name="fiq", kind="fashioniq", image_root="/tmp"))
"""

HWM = """
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
"""

CHECK = HWM + """
import sys
import django
django.setup()
from worker.scorefiles import score_files_check_execute
from hpbench.leaderboard.models import Submission
status = score_files_check_execute(submission_id=int(sys.argv[1]))
print("STATUS", status, Submission.objects.get(pk=int(sys.argv[1])).log.splitlines()[0][:160])
import resource
print("CHILD_PEAK_MIB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print("SELF_PEAK_MIB", _hwm())
"""

LOAD = HWM + """
import sys
from models_zoo.checkpoints import load_checkpoint_file
try:
    load_checkpoint_file(sys.argv[1])
    print("OUTCOME loaded")
except Exception as exc:
    print("OUTCOME refused:", str(exc)[:160])
print("SELF_PEAK_MIB", _hwm())
"""


def _env(var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB}",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HPBENCH_VAR_DIR": str(var_dir),
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CELERY_BROKER_KEY_PREFIX": f"bench-uploads-{uuid.uuid4().hex[:6]}:",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "HPBENCH_SUBMISSIONS_PER_DAY": "1000",
        "DJANGO_SETTINGS_MODULE": "hpbench.settings",
        "TMPDIR": str(var_dir / "tmp"),
    }


def _recreate_database() -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
    conn.close()


def _python(root: Path, env: dict[str, str], code: str, *args: str) -> tuple[str, float, float]:
    """Run ``code`` in a process of its own with ``root``'s code; returns its output, its peak RSS in MiB as
    wait4 reports it (not used: Linux counts this process's RSS at the fork in it; the scripts print their own
    VmHWM) and its CPU seconds (children's included)."""
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=root, env={**env, "PYTHONPATH": str(root)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return out, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _manage(root: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker")


class Probe:
    """The gunicorn worker's peak RSS, RSS, CPU and bytes written, measured around one request."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def _status(self) -> dict[str, int]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) // 1024  # MiB
        return out

    def _cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick

    def _written(self) -> int:
        for line in Path(f"/proc/{self.pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        return 0

    def start(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
        self.before = (self._status(), self._cpu(), self._written())

    def stop(self) -> dict:
        status, cpu, written = self._status(), self._cpu(), self._written()
        return {"rss_before_mib": self.before[0]["VmRSS"], "peak_rss_mib": status["VmHWM"],
                "rss_after_mib": status["VmRSS"], "cpu_s": round(cpu - self.before[1], 2),
                "written_mib": round((written - self.before[2]) / MIB, 1)}


def _multipart(field: str, name: str, payload: bytes, fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart body: the plain ``fields``, then one file."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in (fields or {}).items()]
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return b"".join(parts) + head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def _post(port: int, path: str, body: bytes, boundary: str, token: str | None) -> tuple[int, str]:
    """Send the body in 1 MiB pieces (stopping when the server closes the connection) and read the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(body)))
        if token:
            connection.putheader("Authorization", f"Token {token}")
        else:
            connection.putheader("Cookie", "csrftoken=" + "a" * 32)
        connection.endheaders()
        try:
            for start in range(0, len(body), MIB):
                connection.send(body[start:start + MIB])
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before the body was read: the answer is waiting
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")[:160]
    except (ConnectionError, http.client.HTTPException) as exc:
        return 0, f"connection: {exc}"
    finally:
        connection.close()


def parquet_bomb(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"question": pa.array(["q" * MIB] * rows).dictionary_encode(), "image": ["a"] * rows,
                      "score": [0.5] * rows})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=True, store_schema=False)
    return buffer.getvalue()


def zip_bomb(path: Path, unpacked: int) -> Path:
    import torch

    plain = path.with_suffix(".plain")
    torch.save({"w": torch.zeros(unpacked // 4)}, plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            with source.open(info) as src, target.open(info.filename, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, MIB)
    plain.unlink()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=HERE, help="the checkout gunicorn serves")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--scale", type=float, default=1.0, help="file sizes times this")
    parser.add_argument("--only", default="", help="comma-separated attack names")
    args = parser.parse_args()
    root = args.root.resolve()
    var_dir = Path(tempfile.mkdtemp(prefix="hpbench-bench-uploads-"))
    (var_dir / "tmp").mkdir()
    env = _env(var_dir)
    _recreate_database()
    _manage(root, env, "migrate", "--verbosity", "0")
    token = next(line.split()[1] for line in _manage(root, env, "shell", "-c", SETUP).splitlines()
                 if line.startswith("TOKEN"))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hpbench.wsgi", "-c", str(root / "gunicorn.conf.py"), "-w", "1",
         "--threads", "1", "-b", f"127.0.0.1:{args.port}", "--timeout", "900", "--log-level", "error"],
        cwd=root, env=env)
    try:
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=2).request("GET", "/admin/login/")
                break
            except OSError:
                time.sleep(0.1)
        probe = Probe(_worker_pid(server.pid))
        scale = args.scale
        has_check = (root / "worker" / "scorefile_check.py").exists()
        names = [f'"n{i:07d}"' for i in range(int(5_400_000 * scale))]
        attacks = {
            "parquet-bomb": ("scores", "bomb.parquet", lambda: parquet_bomb(int(1024 * scale)), True),
            "blank-lines": ("scores", "blank.jsonl", lambda: b"\n" * int(64 * MIB * scale), True),
            "one-line": ("scores", "line.jsonl", lambda: b'{"question": "tiny-v1/0", "image": "'
                         + b"b" * int(60 * MIB * scale) + b'", "score": 1}\n', True),
            "json-object": ("scores", "big.json", lambda: b'{"version": "rc2", "metric": "recall", "7": ['
                            + ",".join(names).encode() + b"]}", True),
            "healthz-body": ("junk", "junk.bin", lambda: b"\0" * int(256 * MIB * scale), False),
        }
        print(f"serving {root} (pid {probe.pid}); scale {scale}")
        wanted = set(filter(None, args.only.split(",")))
        for name, (field, filename, make, authenticated) in attacks.items():
            if wanted and name not in wanted:
                continue
            payload = make()
            body, boundary = _multipart(field, filename, payload)
            del payload
            path = "/api/leaderboard/submissions" if authenticated else "/healthz"
            probe.start()
            started = time.perf_counter()
            status, text = _post(args.port, path, body, boundary, token if authenticated else None)
            wall = time.perf_counter() - started
            figures = probe.stop()
            print(json.dumps({"attack": name, "file_bytes": len(body), "status": status, "wall_s": round(wall, 2),
                              **figures, "answer": text}))
            if status == 201 and has_check:
                pk = _last_submission(root, env)
                out, _, cpu = _python(root, env, CHECK, str(pk))
                lines = dict(line.split(" ", 1) for line in out.strip().splitlines() if " " in line)
                print(json.dumps({"attack": name, "worker_check": lines.get("STATUS"),
                                  "check_child_peak_rss_mib": int(lines.get("CHILD_PEAK_MIB", -1)),
                                  "task_process_peak_rss_mib": int(lines.get("SELF_PEAK_MIB", -1)),
                                  "check_cpu_s": round(cpu, 2)}))
        if not wanted or "zip-bomb" in wanted:
            bomb = zip_bomb(var_dir / "bomb.pt", int(1024 * MIB * scale))
            body, boundary = _multipart("file", "bomb.pt", bomb.read_bytes(), {"family": "demo"})
            probe.start()
            status, text = _post(args.port, "/api/leaderboard/submissions", body, boundary, token)
            figures = probe.stop()
            print(json.dumps({"attack": "zip-bomb-upload", "file_bytes": bomb.stat().st_size, "status": status,
                              **figures, "answer": text}))
            import torch

            torch.save({"w": torch.zeros(1024)}, var_dir / "small.pt")
            for label, path in (("baseline-load-4-KiB-checkpoint", var_dir / "small.pt"), ("zip-bomb-load", bomb)):
                out, _, cpu = _python(root, env, LOAD, str(path))
                lines = dict(line.split(" ", 1) for line in out.strip().splitlines() if " " in line)
                print(json.dumps({"attack": label, "outcome": lines.get("OUTCOME", out[-200:]),
                                  "load_peak_rss_mib": int(lines.get("SELF_PEAK_MIB", -1)),
                                  "load_cpu_s": round(cpu, 2)}))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(var_dir, ignore_errors=True)
    return 0


def _last_submission(root: Path, env: dict[str, str]) -> int:
    out = _manage(root, env, "shell", "-c",
                  "from hpbench.leaderboard.models import Submission; print('PK', Submission.objects.latest('pk').pk)")
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith("PK")))


if __name__ == "__main__":
    sys.exit(main())
