"""One score file validated in a process of its own, under a memory and CPU limit (``python -m
worker.scorefile_check --memory BYTES --cpu SECONDS PATH NAME``).

The worker (``worker/scorefiles.py``) runs this for each file a researcher uploaded: whatever the file holds, the
parsing cannot take more than ``--memory`` bytes of address space or ``--cpu`` seconds, and what it costs is
returned to the system when the process ends. The limits are set before anything is imported. Prints one
JSON object: ``{"error": message}`` or the file's kind, rows and target (``benchmark_id``, or ``dataset_id``,
``split``, ``metric``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys


def _limit(memory: int, cpu: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ARROW_NUM_THREADS"):
        os.environ[name] = "1"  # each thread reserves address space; one is enough here


def check(path: str, name: str, memory: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")
    django.setup()
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    from hpbench.leaderboard.scorefiles import ScoreFileError, validate_score_file

    try:
        with open(path, "rb") as handle:
            item = validate_score_file(handle, name=name, size=os.path.getsize(path))
    except ScoreFileError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": f"file {name!r}: needs more than {memory} bytes of memory to read"}
    out: dict = {"kind": item.kind, "rows": item.rows}
    if item.relevance is not None:
        out["benchmark_id"] = item.relevance.benchmark.pk
    else:
        assert item.rankings is not None
        out.update(dataset_id=item.rankings.protocol.dataset.pk, split=item.rankings.protocol.split,
                   metric=item.rankings.metric)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("path")
    parser.add_argument("name")
    args = parser.parse_args(argv)
    _limit(args.memory, args.cpu)
    try:
        result = check(args.path, args.name, args.memory)
    except MemoryError:
        result = {"error": f"file {args.name!r}: needs more than {args.memory} bytes of memory to read"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
