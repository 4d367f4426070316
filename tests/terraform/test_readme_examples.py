"""README examples are tests (fabric style): every ```hcl block of a module README that ends with
`# tftest modules=N resources=M [inventory=FILE]` is planned as a root module (its `source` pointed
at the module) and must plan exactly that many modules and resources (as in fabric, a module counts
when it plans resources), and match the inventory (in tests/terraform/<module>/, e.g.
aws-worker-group/readme-example.yaml)."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.terraform import REPO
from tests.terraform.conftest import HERE, Plan, Terraform, check_inventory

DIRECTIVE = re.compile(r"^# tftest modules=(\d+) resources=(\d+)(?: inventory=(\S+))?\s*$", re.M)


def _examples() -> list[tuple[Path, int, str]]:
    found = []
    for readme in sorted([*REPO.glob("modules/*/README.md"), *REPO.glob("modules/*/*/README.md")]):
        blocks = re.findall(r"```hcl\n(.*?)```", readme.read_text(), re.S)
        found += [(readme.parent, i, block) for i, block in enumerate(blocks) if DIRECTIVE.search(block)]
    return found


EXAMPLES = _examples()
_ROOTS = Path(tempfile.mkdtemp(prefix="airtasks-readme-examples-"))
atexit.register(shutil.rmtree, _ROOTS, True)


def example_root(module: Path, index: int, block: str) -> Path:
    """The example as a root module of its own (made once per session)."""
    root = _ROOTS / f"{module.relative_to(REPO).as_posix().replace('/', '+')}-{index}"
    if not root.is_dir():
        root.mkdir()
        # README sources are written from an env (`../../modules/...`): point them at the module.
        source = f'source = "{os.path.relpath(module, root)}"'
        (root / "main.tf").write_text(re.sub(r'source\s*=\s*"[^"]*"', source, block, count=1))
    return root


def planned(items: list[pytest.Item]) -> list[Plan]:
    """The plans these tests ask for (the `terraform` fixture starts them in the background)."""
    params = [item.callspec.params for item in items if hasattr(item, "callspec")]
    return [Plan(str(example_root(p["module"], p["index"], p["block"]))) for p in params if "block" in p]


def test_every_module_readme_has_a_tested_example() -> None:
    tested = {module.relative_to(REPO).as_posix() for module, _, _ in EXAMPLES}
    assert {
        "modules/swarm-boot",
        "modules/aws/network",
        "modules/aws/swarm-manager",
        "modules/aws/worker-group",
    } <= tested


@pytest.mark.parametrize(
    ("module", "index", "block"), EXAMPLES, ids=[f"{m.relative_to(REPO)}#{i}" for m, i, _ in EXAMPLES]
)
def test_readme_example_plans(terraform: Terraform, module: Path, index: int, block: str) -> None:
    match = DIRECTIVE.search(block)
    assert match
    modules, resources, inventory = int(match[1]), int(match[2]), match[3]
    summary = terraform.plan(str(example_root(module, index, block)))
    where = f"{module.relative_to(REPO)}/README.md example {index}"
    assert summary.counts["modules"] == modules, f"{where}: {summary.counts['modules']} modules planned"
    assert summary.counts["resources"] == resources, (
        f"{where}: {summary.counts['resources']} resources planned"
    )
    if inventory:
        folder = HERE / module.relative_to(REPO).as_posix().removeprefix("modules/").replace("/", "-")
        check_inventory(
            summary, folder / inventory, regenerate=f"pytest {Path(__file__).name} -k {module.name}"
        )
