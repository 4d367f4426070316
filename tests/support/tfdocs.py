"""Terraform sources read statically with python-hcl2: no terraform binary, no provider.

What the tests need from a module directory without `terraform init`:
- `load_module(path)`: its variables, outputs, resources, data sources, module calls, providers,
  locals and `terraform` blocks, with HCL strings unquoted and expressions kept as text.
- `render_docs(module)`: the inputs/outputs tables that belong between the README markers
  `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`; `readme_docs(text)` reads them back, and
  `parse_tables(block)` reads any such table (terraform-docs' own layouts too) into rows.
- `object_keys(expr)`: attribute names of an `object({...})` type or `{...}` literal (also the
  body of a `for` expression), for comparing shapes across modules.

Regenerate README tables: `.venv/bin/python -m tests.support.tfdocs --write modules/gcp/network ...`
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}


# ---------------------------------------------------------------------------------------------------
# HCL values
# ---------------------------------------------------------------------------------------------------


def unquote(value: Any) -> Any:
    """python-hcl2 output made plain: quoted keys and strings unquoted, parser metadata dropped.

    Expressions stay as text, without the `${...}` wrapper python-hcl2 adds (`var.x`, `[for ...]`).
    Works with python-hcl2 4.x (unquoted output) and newer releases (quoted output).
    """
    if isinstance(value, dict):
        return {_unquote_str(k): unquote(v) for k, v in value.items() if k not in _META_KEYS}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str):
        return _unquote_str(value)
    return value


def _unquote_str(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"' and _is_one_string(text):
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text.startswith("${") and text.endswith("}") and _balanced(text[2:-1]):
        return text[2:-1]
    return text


def _is_one_string(text: str) -> bool:
    """True when `text` is a single quoted HCL string (not `"a" == "b"`)."""
    i, n = 1, len(text) - 1
    while i < n:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return _inside_interpolation(text, i)
        i += 1
    return True


def _inside_interpolation(text: str, pos: int) -> bool:
    """A quote at `pos` is harmless when it sits inside a `${ ... }` of the string."""
    depth = 0
    i = 1
    while i < pos:
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}" and depth:
            depth -= 1
        i += 1
    return depth > 0


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            return False
    return depth == 0


def blocks(items: list[dict[str, Any]] | dict[str, Any] | None) -> list[dict[str, Any]]:
    """A nested block as a list of bodies, whether python-hcl2 gave a list or one dict."""
    if items is None:
        return []
    if isinstance(items, dict):
        return [items]
    return list(items)


# ---------------------------------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    type: str | None
    description: str | None
    default: Any
    required: bool
    nullable: bool | None
    validations: tuple[dict[str, Any], ...]
    sensitive: bool


@dataclass(frozen=True)
class Output:
    name: str
    description: str | None
    sensitive: bool
    value: Any


@dataclass(frozen=True)
class Block:
    """A `resource`, `data` or `module` block: its type (empty for modules), name and body."""

    kind: str
    type: str
    name: str
    body: dict[str, Any]
    file: str

    @property
    def address(self) -> str:
        if self.kind == "module":
            return f"module.{self.name}"
        prefix = "data." if self.kind == "data" else ""
        return f"{prefix}{self.type}.{self.name}"


@dataclass
class TfModule:
    path: Path
    variables: dict[str, Variable] = field(default_factory=dict)
    variable_order: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    resources: list[Block] = field(default_factory=list)
    data: list[Block] = field(default_factory=list)
    modules: list[Block] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def resources_of(self, type_: str) -> list[Block]:
        return [r for r in self.resources if r.type == type_]

    def resource(self, type_: str, name: str) -> Block:
        for r in self.resources:
            if (r.type, r.name) == (type_, name):
                return r
        raise KeyError(f"{self.path}: no resource {type_}.{name}")

    def module(self, name: str) -> Block:
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(f"{self.path}: no module {name}")

    def required_providers(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for t in self.terraform:
            for rp in blocks(t.get("required_providers")):
                found.update(rp)
        return found

    def required_version(self) -> str | None:
        for t in self.terraform:
            if "required_version" in t:
                return str(t["required_version"])
        return None


def load_module(path: Path | str) -> TfModule:
    """Parse every `*.tf` file of one module directory (not its subdirectories)."""
    path = Path(path)
    module = TfModule(path=path)
    files = sorted(path.glob("*.tf"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.tf files")
    for file in files:
        text = file.read_text()
        module.sources[file.name] = text
        with file.open() as fh:
            parsed = unquote(hcl2.load(fh))
        _collect(module, parsed, file.name)
    return module


def _collect(module: TfModule, parsed: dict[str, Any], file: str) -> None:
    order = module.variable_order.setdefault(file, [])
    for item in parsed.get("variable", []):
        for name, body in item.items():
            order.append(name)
            module.variables[name] = Variable(
                name=name,
                type=None if body.get("type") is None else str(body["type"]),
                description=body.get("description"),
                default=body.get("default"),
                required="default" not in body,
                nullable=body.get("nullable"),
                validations=tuple(blocks(body.get("validation"))),
                sensitive=bool(body.get("sensitive", False)),
            )
    for item in parsed.get("output", []):
        for name, body in item.items():
            module.outputs[name] = Output(
                name=name,
                description=body.get("description"),
                sensitive=bool(body.get("sensitive", False)),
                value=body.get("value"),
            )
    for kind, target in (("resource", module.resources), ("data", module.data)):
        for item in parsed.get(kind, []):
            for type_, named in item.items():
                for name, body in named.items():
                    target.append(Block(kind, type_, name, body, file))
    for item in parsed.get("module", []):
        for name, body in item.items():
            module.modules.append(Block("module", "", name, body, file))
    for item in parsed.get("provider", []):
        module.providers.extend(item.keys())
    for item in parsed.get("locals", []):
        module.locals.update(item)
    module.terraform.extend(parsed.get("terraform", []))


# ---------------------------------------------------------------------------------------------------
# Expressions
# ---------------------------------------------------------------------------------------------------


def object_keys(expr: str) -> list[str]:
    """Top-level attribute names of the first `{...}` object in `expr`.

    `map(object({a = string, b = optional(bool)}))` -> ["a", "b"];
    `{for q, g in module.x : q => {group = g.name, min_size = 1}}` -> ["group", "min_size"].
    """
    start = expr.find("=> {") + 3 if "=> {" in expr else expr.find("{")
    if start < 0:
        return []
    keys: list[str] = []
    depth, i, expect_key = 0, start, True
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            i = _skip_string(expr, i)
            continue
        if ch in "([{":
            depth += 1
            if depth == 1:
                expect_key = True
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and ch in ",\n":
            expect_key = True
        elif depth == 1 and expect_key and (m := re.match(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*[=:]", expr[i:])):
            keys.append(m.group(1))
            expect_key = False
            i += m.end()
            continue
        i += 1
    return keys


def _skip_string(text: str, i: int) -> int:
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return i


def references(value: Any, prefix: str) -> set[str]:
    """Names after `prefix.` anywhere in a parsed body: references(body, "var") -> {"cluster_name"}."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_.\-]){re.escape(prefix)}\.([A-Za-z_][A-Za-z0-9_-]*)")
    return {m.group(1) for text in _strings(value) for m in pattern.finditer(text)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# ---------------------------------------------------------------------------------------------------
# README tables
# ---------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(var: Variable) -> str:
    if var.required:
        return "n/a"
    return f"`{_cell(json.dumps(var.default))}`"


def render_docs(module: TfModule) -> str:
    """The Inputs and Outputs tables, exactly as they stand between the README markers."""
    lines = ["## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name in sorted(module.variables):
        var = module.variables[name]
        lines.append(
            f"| `{name}` | {_cell(var.description or '')} | `{_cell(var.type or 'any')}` "
            f"| {_default(var)} | {'yes' if var.required else 'no'} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name in sorted(module.outputs):
        out = module.outputs[name]
        sensitive = " (sensitive)" if out.sensitive else ""
        lines.append(f"| `{name}` | {_cell(out.description or '')}{sensitive} |")
    return "\n".join(lines)


def readme_docs(readme: str) -> str | None:
    """What stands between the markers, stripped; None when the markers are missing."""
    if BEGIN not in readme or END not in readme:
        return None
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()


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


def write_docs(module_dir: Path) -> bool:
    """Rewrite the README's table block in place; True when it changed."""
    readme = module_dir / "README.md"
    text = readme.read_text()
    if readme_docs(text) is None:
        raise ValueError(f"{readme}: add the markers {BEGIN} and {END} first")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{BEGIN}\n{render_docs(load_module(module_dir))}\n{END}{tail}"
    readme.write_text(new)
    return new != text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite each README.md table block")
    parser.add_argument("dirs", nargs="+", type=Path, help="module or env directories")
    args = parser.parse_args(argv)
    for d in args.dirs:
        if args.write:
            changed = write_docs(d)
            print(f"{d / 'README.md'}: {'updated' if changed else 'up to date'}")
        else:
            print(render_docs(load_module(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
