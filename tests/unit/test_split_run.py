"""`make test` runs its pytest sessions side by side: every line says its part, a failure in
any part fails the run, and a part may run at a lower CPU priority."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.split_run import run_parts


def test_both_parts_run_and_a_failing_part_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test_good.py").write_text("def test_ok():\n    assert True\n")
    (tmp_path / "test_bad.py").write_text(
        "def test_broken():\n    raise RuntimeError('apply failed:\\nError: the line that says why')\n"
    )
    code = run_parts(
        {
            "left": ["-p", "no:cacheprovider", "test_good.py"],
            "right": ["-p", "no:cacheprovider", "test_bad.py"],
        },
        tmp_path,
    )
    out = capsys.readouterr().out
    assert code == 1
    assert any(line.startswith("[left] ") and "1 passed" in line for line in out.splitlines())
    assert "[right] FAILED test_bad.py::test_broken" in out or "[right] test_bad.py F" in out
    assert "left: passed, right: FAILED (exit 1)" in out
    # The failing test is named again at the end, where CI's shortened log still shows it, and
    # then its whole message, whose first line alone does not say why.
    tail = out.splitlines()[-7:]
    assert tail[0] == "make test: right failures:"
    assert tail[1].startswith("  FAILED test_bad.py::test_broken - RuntimeError: apply failed:")
    assert tail[2] == "make test: right failure details:"
    assert tail[3] == "  FAILURE test_bad::test_broken"
    assert tail[4:6] == ["    RuntimeError: apply failed:", "    Error: the line that says why"]
    assert tail[6] == "    at test_bad.py:2"


def test_a_timed_out_test_says_where_it_waited_and_how_far_it_got(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest-timeout's message is the same wherever a test hung: the details add the frames it was
    in and the steps it printed (captured, so otherwise only in the JUnit report)."""
    # A thread beside the test, as a box test has: pytest-timeout then prints every thread's stack
    # into the captured output, after the test's own lines.
    (tmp_path / "test_hangs.py").write_text(
        "import threading, time\n\n"
        "def wait_for(what):\n    time.sleep(30)\n\n"
        "def test_steps():\n"
        "    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "    for n in range(20):\n        print(f'step {n} done')\n"
        "    wait_for('the API server')\n"
    )
    code = run_parts({"only": ["-p", "no:cacheprovider", "--timeout", "2", "test_hangs.py"]}, tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    at = out.index("make test: only failure details:")
    assert out[at + 1 : at + 4] == [
        "  FAILURE test_hangs::test_steps",
        "    Failed: Timeout (>2.0s) from pytest-timeout.",
        "    at test_hangs.py:10 > test_hangs.py:4",
    ]
    # The last twelve steps it printed, the newest last, and not the threads' stacks.
    assert out[at + 4] == "    last printed:"
    assert out[at + 5 :] == [f"      step {n} done" for n in range(8, 20)]


def test_two_passing_parts_pass(tmp_path: Path) -> None:
    (tmp_path / "test_good.py").write_text("def test_ok():\n    assert True\n")
    args = ["-p", "no:cacheprovider", "test_good.py"]
    assert run_parts({"a": args, "b": args}, tmp_path) == 0


def test_a_niced_part_runs_at_lower_priority_and_the_others_do_not(tmp_path: Path) -> None:
    base = os.nice(0)
    for name, niceness in (("low", min(base + 10, 19)), ("normal", base)):
        (tmp_path / f"test_{name}.py").write_text(
            f"import os\n\ndef test_niceness():\n    assert os.nice(0) == {niceness}\n"
        )
    parts = {name: ["-p", "no:cacheprovider", f"test_{name}.py"] for name in ("low", "normal")}
    assert run_parts(parts, tmp_path, {"low": 10}) == 0


def test_each_part_names_its_longest_test_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test_slow.py").write_text(
        "import time\n\nclass TestWaits:\n    def test_a(self):\n        time.sleep(0.6)\n\n"
        "def test_b():\n    time.sleep(0.6)\n"
    )
    (tmp_path / "test_quick.py").write_text("def test_ok():\n    assert True\n")
    assert run_parts({"only": ["-p", "no:cacheprovider", "test_quick.py", "test_slow.py"]}, tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("make test: only's longest test files (setup, call and teardown):")
    first, second = out[at + 1].split(), out[at + 2].split()
    # The class's test and the plain one add up under their file, which comes first.
    assert [first[2], second[2]] == ["test_slow.py", "test_quick.py"], out[at:]
    assert int(first[0]) >= 1, out[at:]
