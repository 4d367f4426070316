"""Every row of the bad-input catalogue (tests/bad_input.yaml) is a test.

Here: the table's form, its copy in docs/troubleshooting.md, the Terraform rows' messages (the variables'
own error_message, planned by the test the row names), and the scaler-config and CLI rows, run
in-process through `airtasks`'s entry point against a request counter that stands in for AWS,
Airflow and Docker: a non-zero exit, the row's error in the output, no request, no file written.
The DAG-params rows run in tests/integration/test_examples_celery.py against Airflow.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airtasks.cli import main
from airtasks_dev.devstack.cli import main as dev_main
from tests.bad_input import DOC, KINDS, REPO, Row, doc_block, of_kind, render, rows
from tests.support.services.http_stub import QuietHandler, serving


class _Counter(QuietHandler):
    requests: list[str] = []

    def _any(self) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any


@pytest.fixture(scope="module")
def counter() -> Iterator[str]:
    with serving(_Counter) as address:
        yield address


def good_config(counter: str) -> dict[str, Any]:
    return {
        "backend": "aws",
        "cluster_name": "demo",
        "region": "eu-west-1",
        "sources": {"airflow": {"url": f"http://{counter}"}, "rabbitmq": None},
        "queues": {"default": {"group": "airtasks-demo-default", "min_size": 0, "max_size": 10}},
    }


def with_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for dotted, value in overrides.items():
        *head, last = dotted.split(".")
        node = config
        for key in head:
            node = node[key]
        node[last] = value
    return config


def run_airtasks(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    # Rows whose input starts with `dev` run the development tool behind `make up`
    # (`python -m airtasks_dev`), not a command of the package.
    entry = main
    if args[:1] == ["dev"]:
        args, entry = args[1:], dev_main
    monkeypatch.setattr(sys, "argv", ["airtasks", *args])
    code = 0
    try:
        entry()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out + out.err


# ---- the table ----------------------------------------------------------------------------------


def test_rows_are_well_formed() -> None:
    ids = [r.id for r in rows()]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    for row in rows():
        assert row.kind in KINDS, row.id
        for name in row.names:
            assert name in row.error, f"{row.id}: the error must name {name!r}"
        assert row.fix in row.error, f"{row.id}: the error must name the fix {row.fix!r}"
        assert (row.test is not None) == (row.kind == "tfvars"), f"{row.id}: tfvars rows name their test"
    assert len(rows()) >= 40


def test_troubleshooting_table_is_the_catalogue() -> None:
    block = doc_block(DOC.read_text())
    assert block is not None, "docs/troubleshooting.md has no bad-input block; see tests/bad_input.py"
    assert block == render(), "its bad-input table is stale: run .venv/bin/python -m tests.bad_input"


def _validated_in(where: str) -> list[Path]:
    """`where`'s variables.tf, and those of the local modules it calls, and theirs: an env passes
    its variables to its cluster module (modules/*/cluster), which holds their validations or
    passes a variable on to a module shared by both clouds (modules/dag-bundles)."""
    root = (REPO / where).resolve()
    found = [root / "variables.tf"]
    for tf in sorted(root.glob("*.tf")):
        for source in re.findall(r'^\s*source\s*=\s*"(\.{1,2}/[^"]+)"', tf.read_text(), re.M):
            found += _validated_in(str((root / source).resolve().relative_to(REPO)))
    return found


@pytest.mark.parametrize("row", of_kind("tfvars"), ids=lambda r: r.id)
def test_terraform_row_is_the_variables_own_message_and_planned_by_its_test(row: Row) -> None:
    files = _validated_in(row.where)
    sources = [f.read_text().replace('\\"', '"') for f in files if f.is_file()]
    assert any(row.error in s for s in sources), (
        f"{row.id}: no such error_message in {', '.join(str(f.relative_to(REPO)) for f in files)}"
    )
    test_source = (REPO / str(row.test)).read_text()
    (key,) = row.input
    assert f'"{key}"' in test_source, f"{row.id}: {row.test} plans no bad {key}"
    assert f'"{row.where}"' in test_source or row.where.split("/")[-1] in test_source, row.id


# ---- scaler config and CLI rows, run -------------------------------------------------------------


@pytest.mark.parametrize("row", of_kind("scaler-config") + of_kind("cli"), ids=lambda r: r.id)
def test_refused_with_the_fix_and_no_call(
    row: Row,
    counter: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Counter.requests = []
    url = f"http://{counter}"
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "DOCKER_HOST": f"tcp://{counter}",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "AIRTASKS_AIRFLOW_USERNAME": "admin",
        "AIRTASKS_AIRFLOW_PASSWORD": "not-used",
        "HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists").write_text("keep me\n")
    (tmp_path / "trace.csv").write_text("submit_s,queue,duration_s\n0,default,30\n")
    # Traces with a bad value in an optional column (cli-simulate-trace-* rows).
    (tmp_path / "trace-key.csv").write_text("submit_s,queue,duration_s,key\n0,default,30,etl/load\n")
    (tmp_path / "trace-scheduled.csv").write_text(
        "submit_s,queue,duration_s,key,dag,scheduled_s\n10,default,30,etl.load,etl,30\n"
    )
    (tmp_path / "c.json").write_text(json.dumps(good_config(counter)))
    # A scaler config for the simulator with a switch that is not a boolean (cli-simulate-config-*).
    (tmp_path / "sim-pack.json").write_text(json.dumps({"queues": {"default": {"pack": "often"}}}))
    if row.kind == "scaler-config":
        config = tmp_path / "bad.json"
        config.write_text(json.dumps(with_overrides(good_config(counter), row.input)))
        command = row.where.split()[1]
        args = [command, "--config", str(config)] + (["--once"] if command == "scale" else [])
    else:
        monkeypatch.setenv("AIRTASKS_AIRFLOW_URL", url)
        args = [a.replace("{tmp}", str(tmp_path)) for a in row.input]
    before = sorted(p.name for p in tmp_path.iterdir())

    code, output = run_airtasks(args, capsys, monkeypatch)

    assert code != 0, f"{row.id}: accepted:\n{output}"
    assert row.error in output, f"{row.id}: the user sees:\n{output}"
    assert "Traceback" not in output
    assert _Counter.requests == [], f"{row.id}: calls were made: {_Counter.requests}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, f"{row.id}: a file was written"
    assert (tmp_path / "exists").read_text() == "keep me\n"
    with contextlib.suppress(FileNotFoundError):
        assert not any((tmp_path / "state").rglob("*")), f"{row.id}: state was written"
