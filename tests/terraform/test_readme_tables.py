"""Every module and env README has an inputs/outputs table (between BEGIN_TF_DOCS/END_TF_DOCS) that
matches its variables.tf/outputs.tf: the same names, descriptions and required flags.

Fix a failure by editing the README, or regenerate the block:
    .venv/bin/python -m tests.support.tfdocs --write <module dir>
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.terraform import REPO
from tests.support.tfdocs import cell_name, load_module, parse_tables, readme_docs

MODULES = sorted(
    {
        p.parent.relative_to(REPO)
        for pattern in ("modules/*/*.tf", "modules/*/*/*.tf", "envs/*/*.tf")
        for p in REPO.glob(pattern)
    }
)


def _norm(text: str) -> str:
    return " ".join(text.replace("<br>", " ").split())


@pytest.mark.parametrize("module", MODULES, ids=[str(m) for m in MODULES])
def test_readme_table_matches_code(module: Path) -> None:
    hint = f"regenerate with: .venv/bin/python -m tests.support.tfdocs --write {module}"
    readme = REPO / module / "README.md"
    assert readme.exists(), f"{module} has no README.md ({hint})"
    block = readme_docs(readme.read_text())
    assert block, f"{readme.relative_to(REPO)} has no BEGIN_TF_DOCS/END_TF_DOCS block ({hint})"
    tables = parse_tables(block)
    tf = load_module(REPO / module)
    inputs = [tf.variables[name] for name in sorted(tf.variables)]
    outputs = [tf.outputs[name] for name in sorted(tf.outputs)]

    rows = {cell_name(r.get("name", "")): r for r in tables.get("inputs", [])}
    assert sorted(rows) == [i.name for i in inputs], f"{module}: inputs table out of step ({hint})"
    for var in inputs:
        row = rows[var.name]
        if "description" in row:
            assert _norm(row["description"]) == _norm(var.description or ""), (
                f"{module}: {var.name} description ({hint})"
            )
        if "required" in row:
            assert row["required"].strip().lower() == ("yes" if var.required else "no"), (
                f"{module}: {var.name} ({hint})"
            )

    rows = {cell_name(r.get("name", "")): r for r in tables.get("outputs", [])}
    assert sorted(rows) == [o.name for o in outputs], f"{module}: outputs table out of step ({hint})"
    for out in outputs:
        if "description" in rows[out.name]:
            assert _norm(rows[out.name]["description"]) == _norm(out.description or ""), (
                f"{module}: {out.name} ({hint})"
            )


def test_every_variable_and_output_is_described() -> None:
    for module in MODULES:
        tf = load_module(REPO / module)
        for item in [*tf.variables.values(), *tf.outputs.values()]:
            assert item.description, f"{module}: {item.name} has no description"
