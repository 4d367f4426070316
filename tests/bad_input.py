"""The bad-input catalogue (tests/bad_input.yaml): rows, and the table in docs/troubleshooting.md
rendered from them. Rewrite that table with `.venv/bin/python -m tests.bad_input`."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TABLE = Path(__file__).with_name("bad_input.yaml")
DOC = REPO / "docs" / "troubleshooting.md"
BEGIN, END = "<!-- BEGIN BAD_INPUT (python -m tests.bad_input) -->", "<!-- END BAD_INPUT -->"
KINDS = ("tfvars", "scaler-config", "cli", "dag-params", "api-query", "swarm-service")
TITLES = {
    "tfvars": "Terraform variables (`terraform plan` fails before anything is created)",
    "scaler-config": "The scaler's config (`--config FILE`; exit 1 before any cloud call)",
    "cli": "Command-line arguments (exit 1 or 2 before any cloud call)",
    "dag-params": "DAG params (`example_trigger_target`; Airflow refuses the run, none is created)",
    "api-query": "The Cluster page's API (refused with 404 or 422 before anything is read)",
    "swarm-service": (
        "A single-host worker service (`backend: swarm`; the queue holds, no replica is stopped"
        " and the service is not changed)"
    ),
}


@dataclass(frozen=True)
class Row:
    id: str
    kind: str
    where: str
    input: Any
    names: tuple[str, ...]
    fix: str
    error: str
    test: str | None = None


@cache
def rows() -> tuple[Row, ...]:
    raw = yaml.safe_load(TABLE.read_text())
    return tuple(Row(**{**r, "names": tuple(r["names"])}) for r in raw)


def of_kind(kind: str) -> list[Row]:
    return [r for r in rows() if r.kind == kind]


def shown_input(row: Row) -> str:
    """The input as a user writes it: tfvars assignments, config keys, a command line, a conf."""
    if row.kind == "cli" and row.input[:2] == ["dev", "up"]:
        # The development tool behind `make up`, not a command of the package.
        return "make up " + " ".join(
            f"{a.lstrip('-').upper()}={b}" for a, b in zip(row.input[2::2], row.input[3::2], strict=True)
        )
    if row.kind == "cli":
        return "airtasks " + " ".join(a if " " not in a else f"'{a}'" for a in row.input).replace(
            "{tmp}/", ""
        )
    if row.kind == "dag-params":
        return f"--conf '{json.dumps(row.input)}'"
    if row.kind == "api-query":
        return f"GET ?{row.input['query']}"
    return ", ".join(
        f"{k} = {json.dumps(v)}" if row.kind == "tfvars" else f"{k}: {json.dumps(v)}"
        for k, v in row.input.items()
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _prose_cell(text: str) -> str:
    """A cell outside a code span: `[` escaped too (a regex like `[a-z](...)` would be a link)."""
    return _cell(text).replace("[", "\\[")


def render() -> str:
    lines = [BEGIN]
    for kind in KINDS:
        lines += ["", f"**{TITLES[kind]}**", "", "| where | bad input | what you see |", "|---|---|---|"]
        for row in of_kind(kind):
            lines.append(f"| `{row.where}` | `{_cell(shown_input(row))}` | {_prose_cell(row.error)} |")
    lines += ["", END]
    return "\n".join(lines)


def doc_block(text: str) -> str | None:
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def write_doc() -> bool:
    text = DOC.read_text()
    block = doc_block(text)
    if block is None:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} block; add one under 'Bad input'")
    new = text.replace(block, render())
    if new != text:
        DOC.write_text(new)
    return new != text


if __name__ == "__main__":
    name = DOC.relative_to(REPO)
    print(f"updated {name}" if write_doc() else f"{name} is up to date", file=sys.stderr)
