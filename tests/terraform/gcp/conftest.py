"""GCP plan tests: dummy credentials for the google provider, and the plan harness.

Plans need no real credentials (no data source is read when `zones` is given), but the google
provider refuses to configure without any: the tests give it a dummy access token, the way
cloud-foundation-fabric's CI gives it a dummy credentials file.

`gcp_plan` is the suite's shared `plan_summary` fixture (tests/terraform/conftest.py:
`plan_summary(module, *tfvars_files, **vars)`) when there is one, else the small tftest harness
below with the same call and result shape: values by address, counts by type (plus `modules`,
`resources`), planned outputs.
"""

from __future__ import annotations

import collections
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import tftest

from tests.support.terraform import REPO, TERRAFORM, terraform_env


class PlanSummary(NamedTuple):
    values: dict[str, Any]
    counts: dict[str, int]
    outputs: dict[str, Any]


_IGNORE = shutil.ignore_patterns(
    ".terraform", ".terraform.lock.hcl", "terraform.tfvars", "*.auto.tfvars*", "terraform.tfstate*"
)


def local_plan_summary(module: str, *tf_var_files: str, **tf_vars: Any) -> PlanSummary:
    """Plan `module` (relative to the repo) in a copy next to it, so `../../` module sources resolve."""
    source = REPO / module
    with tempfile.TemporaryDirectory(dir=source.parent, prefix=f".plan-{source.name}-") as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=_IGNORE)
        tf = tftest.TerraformTest(tmp, binary=TERRAFORM, env=terraform_env())
        tf.setup(upgrade=True, cleanup_on_exit=False)
        plan = tf.plan(
            output=True, tf_var_file=[str(Path(f).resolve()) for f in tf_var_files], tf_vars=tf_vars
        )
        values: dict[str, Any] = {}
        counts: collections.Counter[str] = collections.Counter(modules=0, resources=0)
        queue = collections.deque([plan.root_module])
        while queue:
            node = queue.popleft()
            if "type" in node:
                counts[node["type"]] += 1
            if "values" in node:
                values[node["address"]] = node["values"]
            for resource in node.get("resources", []):
                counts["resources"] += 1
                queue.append(resource)
            for child in node.get("child_modules", []):
                counts["modules"] += 1
                queue.append(child)
        outputs = plan.get("planned_values", {}).get("outputs", {})
        del tf
    return PlanSummary(values, dict(counts), outputs)


@pytest.fixture
def google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dummy token: enough for the provider to configure and plan, useless for any API call."""
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "dummy-token-for-offline-plans")
    monkeypatch.setenv("GOOGLE_PROJECT", "my-project-123")


@pytest.fixture
def gcp_plan(request: pytest.FixtureRequest, google_env: None) -> Callable[..., Any]:
    try:
        shared: Callable[..., Any] = request.getfixturevalue("plan_summary")
    except pytest.FixtureLookupError:
        return local_plan_summary
    return shared
