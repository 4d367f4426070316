"""Plan fixtures in the style of cloud-foundation-fabric: plan a module with tfvars, summarise the
plan (values by address, counts by type, outputs) and check it against YAML inventories. One
harness and one case layout for AWS and GCP:

    tests/terraform/<folder>/tftest.yaml   module: <path>, tests: [<case>, ...], optional
                                           common: [<file>.tfvars, ...] (planned before each case)
    tests/terraform/<folder>/<case>.tfvars
    tests/terraform/<folder>/<case>.yaml   values (by address), counts (by type), outputs

Inventories match a subset: only the listed keys of `values`, lists length-checked, `__missing__`
for an address not planned or an attribute absent or null; `outputs` are compared whole (a
mapping has exactly the listed keys). Strings compare without surrounding whitespace (YAML block
scalars end in a newline).

GCP modules need the hashicorp/google provider: where it cannot be installed their cases skip
with GOOGLE_SKIP_REASON, the one skip CI tolerates (tests/support/ci_skips.py). Plans get a dummy
Google access token: enough for the provider to plan, useless for any API call.

Each module or env is initialised once per session into its own TF_DATA_DIR (the repo's own
`.terraform` folders are left alone), and plans run in place with `-refresh=false` against the
session's moto server (data sources and the account id need an AWS API).

Plans are slow (a provider start and a plan walk, ~5 s each) and many; a test module may declare
the plans its selected tests will ask for (`planned(items) -> [Plan | PlanError]`): the session's
`terraform` fixture then runs them all in the background, PARALLEL at a time, and each test waits
only for its own (or runs it at once, if it has not started yet). Same plans, same assertions.

Plans that must fail (bad input) run as one `terraform test` per module and tfvars: a test file
with one plan-only run per case, written into a hidden folder of the module for the run's length
(`terraform test` reads test files only from inside the configuration). One process loads the AWS
provider's schema once, where a plan per case loaded it every time (4 CPU-seconds a case against
under 2, on CI's two cores). The errors are the plan's own.
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tftest
import yaml

from airtasks_dev.devstack.moto import MotoServer
from tests.support.terraform import REPO, TERRAFORM, google_provider_available, terraform_env

HERE = Path(__file__).parent
ARTIFACTS = REPO / "tests" / "artifacts"
# An AMI the moto server ships (its Ubuntu images are old; nothing boots under moto anyway).
MOTO_AMI = "ami-785db401"
# Terraform processes at once: a plan waits on its provider and moto about half the time (2 cores).
PARALLEL = 3
GOOGLE_SKIP_REASON = "hashicorp/google provider not installed"  # the one skip CI tolerates
needs_google = pytest.mark.skipif(not google_provider_available(), reason=GOOGLE_SKIP_REASON)
MISSING = "__missing__"
# The hidden folder a batch of bad-input cases is written to, inside the module (gitignored).
BAD_INPUT_PREFIX = ".bad-input-"


def is_gcp(module: str) -> bool:
    """Modules and envs planned with the google provider."""
    return module.startswith(("modules/gcp/", "envs/gcp"))


def google_missing(module: str) -> bool:
    return is_gcp(module) and not google_provider_available()


@dataclass(frozen=True)
class Case:
    """One plan case: `<folder>/<name>.tfvars` (after the folder's `common` files) against
    `<folder>/<name>.yaml`."""

    module: str
    folder: Path
    name: str
    common: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.folder.name}/{self.name}"

    @property
    def tfvars(self) -> tuple[Path, ...]:
        return (*(self.folder / c for c in self.common), self.folder / f"{self.name}.tfvars")

    @property
    def inventory(self) -> Path:
        return self.folder / f"{self.name}.yaml"


def cases(module_prefix: str = "") -> list[Case]:
    """Every `tests/terraform/*/tftest.yaml` case (of modules under `module_prefix`)."""
    found = []
    for spec in sorted(HERE.glob("*/tftest.yaml")):
        config = yaml.safe_load(spec.read_text())
        if config["module"].startswith(module_prefix):
            common = tuple(config.get("common") or ())
            found += [Case(config["module"], spec.parent, name, common) for name in config["tests"]]
    return found


@dataclass(frozen=True)
class Plan:
    """A plan a test module will ask for: `terraform.plan(module, tf_var_files, **tf_vars)`."""

    module: str
    tf_var_files: tuple[Path, ...] = ()
    tf_vars: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class PlanError(Plan):
    """A plan that must fail: `terraform.plan_error(module, tf_var_files, **tf_vars)`."""


@dataclass
class PlanSummary:
    values: dict[str, Any]
    counts: dict[str, int]
    outputs: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def of_type(self, type_: str) -> dict[str, Any]:
        """Values of every resource (not data source) of one type, by address."""
        return {
            a: v
            for a, v in self.values.items()
            if a.split(".")[-2].split("[")[0] == type_ and ".data." not in f".{a}"
        }

    def output(self, name: str) -> Any:
        return self.outputs[name].get("value", "__unknown__")


class Terraform:
    """Runs terraform on repo modules with one TF_DATA_DIR per module per session.

    Every plan runs once per session (tests share the summaries); `prefetch` starts declared ones
    in the background.
    """

    def __init__(self, data_root: Path, env: dict[str, str]) -> None:
        self.data_root = data_root
        self.env = env
        self._ready: set[str] = set()
        self._init_locks: collections.defaultdict[str, threading.Lock] = collections.defaultdict(
            threading.Lock
        )
        self._lock = threading.Lock()
        self._jobs: dict[str, Future[Any]] = {}
        # A bad-input case's key -> the key and work of the batch that plans it.
        self._batch_of: dict[str, tuple[str, Callable[[], dict[str, tuple[bool, str]]]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="terraform")

    def env_for(self, module: str) -> dict[str, str]:
        return {**self.env, "TF_DATA_DIR": str(self.data_root / module.replace("/", "+"))}

    def init(self, module: str) -> None:
        with self._init_locks[module]:  # once per module, whichever thread asks first
            if module in self._ready:
                return
            self.run(module, "init", "-backend=false", "-input=false", "-no-color")
            self._ready.add(module)

    def run(self, module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [TERRAFORM, *args],
            cwd=REPO / module,
            env=self.env_for(module),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"terraform {args[0]} in {module} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    # -- once per session, maybe in the background -------------------------------------------------

    def _job(self, key: str, work: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = self._pool.submit(work)
        return job

    def _result(self, key: str, work: Callable[[], Any]) -> Any:
        """The job's result; a job still queued behind others is taken over and run here."""
        job = self._job(key, work)
        if job.cancel():
            job = Future()
            with self._lock:
                self._jobs[key] = job
            try:
                job.set_result(work())
            except BaseException as exc:
                job.set_exception(exc)
        return job.result()

    @staticmethod
    def _key(kind: str, module: str, tf_var_files: Iterable[Path], tf_vars: dict[str, Any]) -> str:
        return json.dumps([kind, module, [str(p) for p in tf_var_files], tf_vars], sort_keys=True)

    def prefetch(self, plans: Iterable[Plan]) -> None:
        """Start these plans in the background (PARALLEL at a time), in this order; the plans
        that must fail in one batch per module and tfvars, where the first of them was."""
        batches: dict[tuple[str, tuple[Path, ...]], list[dict[str, Any]]] = {}
        for p in plans:
            files, tf_vars = list(p.tf_var_files), dict(p.tf_vars)
            if isinstance(p, PlanError):
                batches.setdefault((p.module, tuple(files)), []).append(tf_vars)
            else:
                key = self._key("plan", p.module, files, tf_vars)
                self._job(key, lambda p=p, f=files, v=tf_vars: self._plan(p.module, f, **v))
        for (module, files_), cases in batches.items():
            self._job(*self._batch(module, list(files_), cases))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- plans -----------------------------------------------------------------------------------

    def plan(self, module: str, tf_var_files: list[Path] | None = None, **tf_vars: Any) -> PlanSummary:
        """Plan once per module, tfvars and vars in a session (tests share the summaries)."""
        files = tf_var_files or []
        key = self._key("plan", module, files, tf_vars)
        return self._result(key, lambda: self._plan(module, files, **tf_vars))  # type: ignore[no-any-return]

    def _plan(self, module: str, tf_var_files: list[Path] | None = None, **tf_vars: Any) -> PlanSummary:
        self.init(module)
        tf = tftest.TerraformTest(REPO / module, binary=TERRAFORM, env=self.env_for(module))
        plan = tf.plan(
            output=True,
            refresh=False,
            lock=False,  # no state to protect; plans of one module may run at once
            tf_var_file=[str(p) for p in tf_var_files or []],
            tf_vars=tf_vars,
        )
        return summarise(plan)

    def plan_error(self, module: str, tf_var_files: list[Path] | None = None, **tf_vars: Any) -> str:
        """Plan with input that must fail; return the errors (summary, detail and the code they
        point at, whitespace collapsed). Planned in its batch if `prefetch` declared one."""
        files = tf_var_files or []
        key = self._key("error", module, files, tf_vars)
        with self._lock:
            found = self._batch_of.get(key)
        batch_key, work = found or self._batch(module, files, [tf_vars])
        failed, text = self._result(batch_key, work)[key]
        assert failed, f"plan of {module} with {tf_vars} did not fail: {text}"
        return text

    def _batch(
        self, module: str, files: list[Path], cases: list[dict[str, Any]]
    ) -> tuple[str, Callable[[], dict[str, tuple[bool, str]]]]:
        """The key and work of one `terraform test` planning these cases; each case's key now
        refers to it (unless an earlier batch has it)."""
        batch_key = self._key("errors", module, files, {"cases": cases})
        keys = [self._key("error", module, files, tf_vars) for tf_vars in cases]

        def work() -> dict[str, tuple[bool, str]]:
            return dict(zip(keys, self._plan_errors(module, files, cases), strict=True))

        with self._lock:
            for key in keys:
                self._batch_of.setdefault(key, (batch_key, work))
        return batch_key, work

    def _plan_errors(
        self, module: str, files: list[Path], cases: list[dict[str, Any]]
    ) -> list[tuple[bool, str]]:
        """Per case, in order: (its plan failed, its errors or what terraform said instead)."""
        self.init(module)
        folder = Path(tempfile.mkdtemp(prefix=BAD_INPUT_PREFIX, dir=REPO / module))
        try:
            for i, tf_vars in enumerate(cases):
                (folder / f"case_{i}.tftest.hcl").write_text(_plan_run(f"case_{i}", tf_vars))
            args = ["test", "-json", "-no-color", f"-test-directory={folder.name}"]
            proc = self.run(module, *args, *(f"-var-file={p}" for p in files), check=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        errors: collections.defaultdict[str, list[str]] = collections.defaultdict(list)
        said: collections.defaultdict[str, list[str]] = collections.defaultdict(list)
        status: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            # A run's own messages name it; a test file's (it did not parse) name only the file.
            run = message.get("@testrun") or Path(message.get("@testfile", "")).name.split(".")[0]
            said[run].append(str(message.get("@message", "")).strip())
            if message.get("type") == "diagnostic" and message["diagnostic"]["severity"] == "error":
                errors[run].append(_diagnostic_text(message["diagnostic"]))
            elif message.get("type") == "test_run" and message["test_run"].get("progress") == "complete":
                status[run] = message["test_run"]["status"]
        results = []
        for run in (f"case_{i}" for i in range(len(cases))):
            failed = status.get(run) in ("fail", "error") and bool(errors[run])
            text = " ".join(errors[run]) or "; ".join(said[run]) or proc.stderr[-2000:]
            results.append((failed, text))
        return results


def _hcl(value: Any) -> str:
    """A value as an HCL expression: JSON is one, once template sequences are escaped."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _plan_run(name: str, tf_vars: dict[str, Any]) -> str:
    """A `terraform test` run block that plans (no refresh) with these variables."""
    assignments = "".join(f"    {key} = {_hcl(value)}\n" for key, value in tf_vars.items())
    return (
        f'run "{name}" {{\n  command = plan\n  plan_options {{\n    refresh = false\n  }}\n'
        f"  variables {{\n{assignments}  }}\n}}\n"
    )


def _diagnostic_text(diagnostic: dict[str, Any]) -> str:
    """A diagnostic as `terraform plan` prints it: summary, the code it points at, the values in
    that code, and the detail; whitespace collapsed (plan wraps its lines at the terminal)."""
    snippet = diagnostic.get("snippet") or {}
    parts = [f"Error: {diagnostic.get('summary', '')}", snippet.get("code", "")]
    parts += [f"{v.get('traversal', '')} {v.get('statement', '')}" for v in snippet.get("values") or []]
    parts.append(diagnostic.get("detail", ""))
    return " ".join(" ".join(parts).split())


def summarise(plan: Any) -> PlanSummary:
    """Walk root and child modules: values by address, counts by type (+ modules, resources)."""
    raw: dict[str, Any] = dict(plan._raw)
    values: dict[str, Any] = {}
    counts: collections.Counter[str] = collections.Counter({"modules": 0, "resources": 0})
    queue = collections.deque([raw.get("planned_values", {}).get("root_module", {})])
    while queue:
        node = queue.popleft()
        if "type" in node and node.get("mode", "managed") == "managed":
            counts[node["type"]] += 1
        if "values" in node and "address" in node:
            values[node["address"]] = node["values"]
        for res in node.get("resources", []):
            if res.get("mode", "managed") == "managed":
                counts["resources"] += 1
            queue.append(res)
        for child in node.get("child_modules", []):
            counts["modules"] += 1
            queue.append(child)
    outputs = dict(raw.get("planned_values", {}).get("outputs", {}))
    return PlanSummary(values, dict(counts), outputs, raw=raw)


# ---- inventories --------------------------------------------------------------------------------


def _check(expected: Any, actual: Any, where: str, *, exact: bool = False) -> None:
    """Subset match (listed keys only; `exact`: the same keys), lists length-checked,
    `__missing__` asserts an absent or null attribute, strings compared stripped."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a mapping, plan has {actual!r}"
        if exact:
            assert set(actual) == set(expected), (
                f"{where}: keys {sorted(actual)}, expected {sorted(expected)}"
            )
        for key, value in expected.items():
            if value == MISSING:
                assert key not in actual or actual[key] is None, f"{where}.{key} should be absent"
                continue
            assert key in actual, f"{where}.{key} is not in the plan"
            _check(value, actual[key], f"{where}.{key}", exact=exact)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, plan has {actual!r}"
        assert len(actual) == len(expected), (
            f"{where}: {len(actual)} items in the plan, {len(expected)} expected"
        )
        for i, (exp, act) in enumerate(zip(expected, actual, strict=True)):
            _check(exp, act, f"{where}[{i}]", exact=exact)
    elif isinstance(expected, str) and isinstance(actual, str):
        assert actual.strip() == expected.strip(), f"{where}: plan has {actual!r}, expected {expected!r}"
    else:
        assert actual == expected, f"{where}: plan has {actual!r}, expected {expected!r}"


def check_inventory(summary: PlanSummary, inventory_path: Path, regenerate: str) -> None:
    """Check a plan summary against a YAML inventory (`values`, `counts`, `outputs`)."""
    inventory = yaml.safe_load(inventory_path.read_text()) or {}
    rel = inventory_path.relative_to(REPO)
    try:
        for address, expected in (inventory.get("values") or {}).items():
            if expected == MISSING:
                assert address not in summary.values, f"{rel}: {address} should not be planned"
                continue
            assert address in summary.values, f"{rel}: {address} is not in the plan"
            _check(expected, summary.values[address], f"{rel}: {address}")
        for type_, expected in (inventory.get("counts") or {}).items():
            got = summary.counts.get(type_, 0)
            assert got == expected, f"{rel}: {got} x {type_} planned, {expected} expected"
        for name, expected in (inventory.get("outputs") or {}).items():
            assert name in summary.outputs, f"{rel}: no output {name}"
            _check(expected, summary.output(name), f"{rel}: output {name}", exact=True)
    except AssertionError as exc:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        dump = ARTIFACTS / f"{rel.parent.name}-{inventory_path.stem}.summary.yaml"
        dump.write_text(
            yaml.safe_dump(
                {
                    "values": summary.values,
                    "counts": summary.counts,
                    "outputs": {k: v.get("value") for k, v in summary.outputs.items()},
                },
                sort_keys=True,
            )
        )
        raise AssertionError(
            f"{exc}\nThe whole plan summary is in {dump.relative_to(REPO)}; if the change is intended, "
            f"copy what should be asserted into {rel} (regenerate with: {regenerate})"
        ) from None


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def terraform(
    moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Terraform]:
    """Terraform against the session's moto server, one TF_DATA_DIR per module; the plans the
    selected tests declared (`planned(items)` in their module) start at once, in the background."""
    env = terraform_env(moto_server.env())
    for name in ("TF_LOG", "TF_WORKSPACE"):
        env.pop(name, None)
    # The google provider refuses to configure without credentials; plans need no real ones.
    env.update(GOOGLE_OAUTH_ACCESS_TOKEN="dummy-token-for-offline-plans", GOOGLE_PROJECT="my-project-123")
    tf = Terraform(tmp_path_factory.mktemp("tfdata"), env)
    by_module: dict[Any, list[pytest.Item]] = {}
    for item in request.session.items:
        if isinstance(item, pytest.Function) and hasattr(item.module, "planned"):
            by_module.setdefault(item.module, []).append(item)
    for module, items in by_module.items():
        tf.prefetch(module.planned(items))
    yield tf
    tf.close()


@pytest.fixture
def plan_summary(terraform: Terraform, request: pytest.FixtureRequest) -> Callable[..., PlanSummary]:
    """plan_summary(module, *tfvars files relative to the test's folder, **vars) -> PlanSummary."""
    base = Path(request.path).parent

    def inner(module: str, *tf_var_files: str, **tf_vars: Any) -> PlanSummary:
        return terraform.plan(module, [base / f for f in tf_var_files], **tf_vars)

    return inner


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).is_relative_to(HERE):
            item.add_marker(pytest.mark.terraform)
