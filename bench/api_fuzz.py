"""The fuzzer's counts: a schemathesis run (every check) of the JSON API, anonymous and with a researcher's token.

Runs the suite's fuzzer test (``tests/hpbench/test_openapi.py``, which builds a catalogue with runs, an open
campaign, a benchmark and submissions on a test database and serves it with the live server) with more examples
per operation, and prints per role: operations tested, requests sent, seconds, the status codes answered and the
failures found by check. ``--examples N`` (default 25) sets the fuzzing phase's examples per operation.

    HPBENCH_TEST_DB_NAME=test_fuzz python bench/api_fuzz.py --examples 25
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=25, help="fuzzing-phase examples per operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report_path = Path(folder) / "fuzz.json"
        env = {**os.environ, "HPBENCH_FUZZ_EXAMPLES": str(args.examples), "HPBENCH_FUZZ_REPORT": str(report_path)}
        env.setdefault("HPBENCH_TEST_DB_NAME", "test_api_fuzz")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/hpbench/test_openapi.py", "-k", "fuzzer", "-q", "-p", "no:logging",
             "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True)
        if not report_path.exists():
            print(done.stdout[-3000:], done.stderr[-3000:])
            return 1
        rows = json.loads(report_path.read_text())
    print(f"schemathesis, every check, {args.examples} fuzzing examples per operation (plus examples and coverage)")
    print(f"{'role':<11} {'operations':>10} {'requests':>9} {'seconds':>8}  failures by check  /  statuses answered")
    for row in rows:
        failures = ", ".join(f"{k}: {v}" for k, v in row["failures_by_check"].items()) or "none"
        print(f"{row['role']:<11} {row['operations']:>10} {row['examples']:>9} {row['seconds']:>8}  {failures}  /  "
              + " ".join(f"{code}:{n}" for code, n in row["statuses"].items()))
        for failure in row["failures"] + row["errors"]:
            print("   ", failure.replace("\n", "\n    "))
    print("pytest:", done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.returncode)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
