"""`make test`: the suite as three pytest sessions at once, each line prefixed with its part.

The local-cloud tests (tests/e2e: nodes are dockerds in network namespaces, with their own moto and
registry; the host's Swarm is never touched), the integration tests (services on loopback, the
host's Swarm under its file lock) and the checks (tests/terraform's plans on a moto of their own,
checkov, and tests/unit) share nothing but the image builds, which wait for each other (file locks
in dev/airtasks_dev/images.py). The first two spend much of their time waiting for boots and
schedulers, and the checks only compute: they run at a lower CPU priority (`nice`), in the time
the others leave, instead of after the integration tests in one session. With arguments, one
plain session runs them (`make test PYTEST_ARGS=tests/unit`).

Exit status: 0 when every part passed, else the first non-zero status (e2e part first). A failed
part's FAILED/ERROR summary lines are repeated after the closing line, and then each failure's
error lines (pytest's `E` lines, read from the part's JUnit XML), the frames it failed in and the
last lines it printed: CI keeps only the end of a long log, and a summary line holds only the first
line of a message, which for a Terraform error, a browser timeout or pytest-timeout's is not the one
that says why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

PYTEST = [sys.executable, "-m", "pytest"]
# pytest cuts a summary line's message at the terminal width, 80 columns in a pipe.
WIDE = {"COLUMNS": "240"}
VERDICTS = ("FAILED ", "ERROR ")
# Error lines kept per failure at the end: a Terraform error's tail is 15 lines.
DETAIL_LINES = 25
# A failed test's last printed lines, kept after its error lines: a box test prints its steps as it
# goes, and a timeout's message alone does not say how far it got.
PRINTED_LINES = 12
# A frame of a failure's traceback in pytest's long format: `path.py:LINE: ...`.
FRAME = re.compile(r"^(\S+\.py):(\d+): ")
# pytest-timeout's banner before the threads' stacks it prints into the captured output: what a test
# printed itself ends there.
TIMEOUT_BANNER = re.compile(r"^\++ Timeout \++$")
# Captured output in a part's JUnit XML, for failed tests only.
JUNIT_OUTPUT = ["-o", "junit_logging=system-out", "-o", "junit_log_passing_tests=false"]
# Test files per part in the time report: where to look when `make test` outgrows its budget.
TIME_FILES = 10
CHECKS = ["tests/terraform", "tests/unit"]
PARTS = {
    # The box benchmarks (marker `bench`) hold a cluster in a box for minutes each: `make bench`.
    # The latest fresh-clone run (docs/measured-runs.md): e2e 25.0 min, main 27.3, checks 13.8.
    "e2e": ["--durations=10", "-m", "not bench", "tests/e2e"],
    "main": ["--durations=15", "--ignore=tests/e2e", *(f"--ignore={path}" for path in CHECKS)],
    "checks": ["--durations=10", *CHECKS],
}
# A part's niceness (its test processes and what they start): the checks yield the CPU to the parts
# whose waits have timeouts.
NICE = {"checks": 10}


def _relay(name: str, stream: IO[str], lock: threading.Lock, verdicts: list[str]) -> None:
    for line in stream:
        if line.startswith(VERDICTS):
            verdicts.append(line.rstrip("\n"))
        with lock:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()


def failure_details(junit: Path) -> list[str]:
    """Each failed or erroring test of a JUnit XML report: the last of its `E` lines, the frames
    it failed in (where a timeout struck) and the last lines it printed."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as exc:
        return [f"(no report: {exc})"]
    lines = []
    for case in root.iter("testcase"):
        printed = []
        for out in case.iter("system-out"):
            for ln in (out.text or "").splitlines():
                if TIMEOUT_BANNER.match(ln.strip()):
                    break
                if ln.strip() and not ln.startswith("-----"):
                    printed.append(ln)
        for bad in [*case.iter("failure"), *case.iter("error")]:
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            text = (bad.text or "").splitlines()
            errors = [ln[1:].strip() for ln in text if ln.startswith("E ")]
            frames = [f"{m[1]}:{m[2]}" for m in map(FRAME.match, text) if m]
            lines.append(f"{bad.tag.upper()} {name}")
            lines += [f"  {ln}" for ln in (errors or [bad.get("message", "")])[-DETAIL_LINES:]]
            if frames:
                lines.append(f"  at {' > '.join(frames)}")
            if printed:
                lines.append("  last printed:")
                lines += [f"    {ln}" for ln in printed[-PRINTED_LINES:]]
    return lines


def time_by_file(junit: Path) -> list[tuple[str, float]]:
    """Seconds per test file (setup, call and teardown of its tests), longest first, from a part's
    JUnit XML; empty without one."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return []
    totals: dict[str, float] = {}
    for case in root.iter("testcase"):
        # `tests.e2e.test_cluster` or, for a test class, `tests.e2e.test_cluster.TestX`.
        parts = case.get("classname", "").split(".")
        module = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        path = "/".join(parts[: module + 1]) + ".py"
        totals[path] = totals.get(path, 0.0) + float(case.get("time") or 0.0)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def run_parts(parts: dict[str, list[str]], cwd: Path, nice: dict[str, int] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="airtasks-split-run-") as reports:
        return _run_parts(parts, cwd, Path(reports), nice or {})


def _run_parts(parts: dict[str, list[str]], cwd: Path, reports: Path, nice: dict[str, int]) -> int:
    lock = threading.Lock()
    started = time.monotonic()
    procs: dict[str, subprocess.Popen[str]] = {}
    relays = []
    verdicts: dict[str, list[str]] = {name: [] for name in parts}
    for name, args in parts.items():
        niceness = ["nice", "-n", str(nice[name])] if name in nice else []
        proc = subprocess.Popen(
            [*niceness, *PYTEST, f"--junitxml={reports / name}.xml", *JUNIT_OUTPUT, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, **WIDE},
        )
        procs[name] = proc
        relay = threading.Thread(target=_relay, args=(name, proc.stdout, lock, verdicts[name]), daemon=True)
        relay.start()
        relays.append(relay)
    codes = {name: proc.wait() for name, proc in procs.items()}
    for relay in relays:
        relay.join()
    took = time.monotonic() - started
    for name in parts:
        longest = time_by_file(reports / f"{name}.xml")[:TIME_FILES]
        if longest:
            print(f"make test: {name}'s longest test files (setup, call and teardown):")
            print(*(f"  {seconds:6.0f} s  {path}" for path, seconds in longest), sep="\n")
    summary = ", ".join(
        f"{name}: {'passed' if code == 0 else f'FAILED (exit {code})'}" for name, code in codes.items()
    )
    print(f"make test: {summary}; {took / 60:.1f} min wall time for all parts", flush=True)
    for name, code in codes.items():
        if code != 0:
            print(f"make test: {name} failures:", *verdicts[name] or ["(none reported)"], sep="\n  ")
    for name, code in codes.items():
        if code != 0:
            print(
                f"make test: {name} failure details:", *failure_details(reports / f"{name}.xml"), sep="\n  "
            )
    sys.stdout.flush()
    return next((code for code in codes.values() if code != 0), 0)


def main(argv: list[str]) -> int:
    cwd = Path(__file__).resolve().parents[2]
    if argv:  # the caller chose what to run: one plain session
        return subprocess.call([*PYTEST, "--durations=15", *argv], cwd=cwd)
    return run_parts(PARTS, cwd, NICE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
