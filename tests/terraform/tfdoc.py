"""Inputs/outputs tables for module READMEs, from variables.tf and outputs.tf (python-hcl2).

terraform-docs is not installable here; this renders the same kind of block between
`<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`, and parses any such table back so a test can
keep READMEs in step with the code. Rewrite the blocks with:

    .venv/bin/python -m tests.terraform.tfdoc modules/aws/network envs/aws ...
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
_MISSING = object()


@dataclass(frozen=True)
class Input:
    name: str
    description: str
    type: str
    default: Any  # _MISSING when the variable is required

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class Output:
    name: str
    description: str


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted and expressions as `${...}`; undo both."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return json.loads(value)
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def _blocks(path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    if not path.exists():
        return []
    with path.open() as fh:
        data = hcl2.load(fh)
    return [(_unquote(name), body) for block in data.get(kind, []) for name, body in block.items()]


def read_module(module_dir: Path) -> tuple[list[Input], list[Output]]:
    inputs = [
        Input(
            name,
            " ".join(str(_unquote(body.get("description", ""))).split()),
            " ".join(str(_unquote(body.get("type", "any"))).split()),
            _unquote(body["default"]) if "default" in body else _MISSING,
        )
        for path in sorted(module_dir.glob("*.tf"))
        for name, body in _blocks(path, "variable")
    ]
    outputs = [
        Output(name, " ".join(str(_unquote(body.get("description", ""))).split()))
        for path in sorted(module_dir.glob("*.tf"))
        for name, body in _blocks(path, "output")
    ]
    return sorted(inputs, key=lambda i: i.name), sorted(outputs, key=lambda o: o.name)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(value: Any) -> str:
    text = json.dumps(value)  # None -> null
    return f"`{_cell(text)}`"


def render(module_dir: Path) -> str:
    inputs, outputs = read_module(module_dir)
    lines = [BEGIN, "## Inputs", ""]
    if inputs:
        lines += [
            "| Name | Description | Type | Default | Required |",
            "|------|-------------|------|---------|:--------:|",
        ]
        for i in inputs:
            default = "n/a" if i.required else _code(i.default)
            required = "yes" if i.required else "no"
            lines.append(
                f"| `{i.name}` | {_cell(i.description)} | `{_cell(i.type)}` | {default} | {required} |"
            )
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    if outputs:
        lines += ["| Name | Description |", "|------|-------------|"]
        lines += [f"| `{o.name}` | {_cell(o.description)} |" for o in outputs]
    else:
        lines.append("No outputs.")
    lines.append(END)
    return "\n".join(lines)


def block_of(readme: str) -> str | None:
    match = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), readme, re.S)
    return match.group(0) if match else None


def parse_tables(block: str) -> dict[str, list[dict[str, str]]]:
    """Tables under each `## Heading` of a TF_DOCS block, as rows of {column: cell}."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = ""
    header: list[str] | None = None
    for raw in block.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip().lower(), None
            tables.setdefault(heading, [])
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        if header is None:
            header = [c.lower() for c in cells]
        elif not all(set(c) <= set(":- ") for c in cells):
            tables.setdefault(heading, []).append(dict(zip(header, cells, strict=False)))
    return tables


def cell_name(cell: str) -> str:
    """The bare name in a Name cell: `x`, [x](#input_x), <a name=...></a> [x](#...)."""
    cell = re.sub(r"<a [^>]*></a>", "", cell)
    match = re.search(r"\[([^\]]+)\]", cell)
    return (match.group(1) if match else cell).strip().strip("`").replace("\\_", "_")


def write(module_dir: Path) -> bool:
    """Rewrite the README block (append one if missing); True when the file changed."""
    readme = module_dir / "README.md"
    text = readme.read_text() if readme.exists() else f"# {module_dir.name}\n"
    old = block_of(text)
    new_text = (
        text.replace(old, render(module_dir))
        if old
        else text.rstrip("\n") + "\n\n" + render(module_dir) + "\n"
    )
    if new_text != text:
        readme.write_text(new_text)
        return True
    return False


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(("updated " if write(Path(arg)) else "up to date ") + arg)
