"""Your DAG bundles on envs/aws, planned with one git and one bucket bundle
(env-aws/dag-bundles.tfvars): the manager's stack settings carry them, rendered as the manager's
boot script renders them; the cluster's bucket keeps its guards even without task logs; and every
node may read the bundle's folder and nothing may write under it."""

from __future__ import annotations

import atexit
import base64
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from airtasks.stack.bundles import BUCKET_CLASSPATHS, GIT_CLASSPATH, IMAGE_BUNDLE, parse_dag_bundles
from airtasks.stack.render import render_stack
from tests.support.iam_eval import evaluate
from tests.support.terraform import REPO
from tests.terraform.conftest import HERE, Plan, PlanSummary, Terraform
from tests.terraform.test_aws_plans import LOG_BUCKET as BUCKET
from tests.terraform.test_aws_plans import assert_bucket_guarded

ENV = "envs/aws"
TFVARS = (HERE / "env-aws" / "dag-bundles.tfvars",)
NO_LOGS = (*TFVARS, HERE / "env-aws" / "no-task-logs-override.tfvars")
ARN = f"arn:aws:s3:::{BUCKET}"
GIT_GRANT = "module.cluster.aws_iam_role_policy.git_credentials"
BACKUPS_GRANT = "module.cluster.aws_iam_role_policy.backups"


def readme_examples() -> list[tuple[Path, str]]:
    """The README's "Your DAGs" section: each ```hcl block as a tfvars file (planned after BASE),
    with the ```bash block that follows it."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Your DAGs") :]
    section = section[: section.index("\n## ", 1)]
    pairs = re.findall(r"```hcl\n(.*?)```\s*```bash\n(.*?)```", section, re.S)
    root = Path(tempfile.mkdtemp(prefix="airtasks-readme-dags-"))
    atexit.register(shutil.rmtree, root, True)
    examples = []
    for i, (hcl, bash) in enumerate(pairs):
        (root / f"{i}.tfvars").write_text(hcl)
        examples.append((root / f"{i}.tfvars", bash))
    return examples


README = readme_examples()
BASE = TFVARS[0]  # its dag_bundles replaced by the example's


@pytest.fixture(scope="module")
def plan(terraform: Terraform) -> PlanSummary:
    return terraform.plan(ENV, list(TFVARS))


def manager_script(plan: PlanSummary) -> str:
    template = plan.values["module.cluster.module.manager.aws_launch_template.this"]
    return gzip.decompress(base64.b64decode(template["user_data"])).decode()


def test_the_managers_stack_settings_carry_the_bundles(plan: PlanSummary) -> None:
    script = manager_script(plan)
    (settings,) = re.findall(r"^AIRTASKS_STACK_DAG_BUNDLES='(.*)'$", script, re.M)
    assert json.loads(settings) == [
        {
            "name": "team",
            "git": {
                "url": "https://git.example.org/team/dags.git",
                "ref": "main",
                "subdir": "dags",
                "refresh_seconds": 60,
                "credential": "/team/git-token",  # a parameter's name: the token never passes here
            },
        },
        {
            "name": "shared",
            "bucket": {"url": f"s3://{BUCKET}/shared/", "region": "us-east-1", "refresh_seconds": 30},
        },
    ]
    assert '--dag-bundles "$AIRTASKS_STACK_DAG_BUNDLES"' in script  # what deploy_stack renders with

    # Rendered as the manager renders them: Airflow's bundle list, the image's own folder first.
    names = {"team": "airtasks_git_team_0123456789ab"}  # what `secrets create --git-secrets-out` writes
    stack = render_stack(dag_bundles=parse_dag_bundles(settings), git_secret_names=names)
    services = yaml.safe_load(stack)["services"]
    config = json.loads(
        services["airflow-dag-processor"]["environment"]["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"]
    )
    assert [(b["name"], b["classpath"]) for b in config] == [
        (IMAGE_BUNDLE, "airflow.dag_processing.bundles.local.LocalDagBundle"),
        ("team", GIT_CLASSPATH),
        ("shared", BUCKET_CLASSPATHS["s3"]),
    ]
    assert config[2]["kwargs"] | {"aws_conn_id": None} == {
        "bucket_name": BUCKET,
        "prefix": "shared/",
        "aws_conn_id": None,
        "refresh_interval": 30,
    }


def test_the_manager_makes_the_credentials_swarm_secrets_before_it_renders(plan: PlanSummary) -> None:
    """The boot script's own `git_credentials` (run here on the planned setting) hands `airtasks
    secrets create` each bundle's credential by name; the names it writes reach `stack render`."""
    script = manager_script(plan)
    (settings,) = re.findall(r"^AIRTASKS_STACK_DAG_BUNDLES='(.*)'$", script, re.M)
    (function,) = re.findall(r"^git_credentials\(\) \{.*?^\}$", script, re.M | re.S)
    out = subprocess.run(
        ["bash", "-c", f"{function}\ngit_credentials", "-"],
        env={"AIRTASKS_STACK_DAG_BUNDLES": settings, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["team=/team/git-token"]  # the bucket bundle names none
    deploy = script[script.index("deploy_stack() {") :]
    assert deploy.index("secrets create") < deploy.index("stack render")  # nothing rendered before
    assert '--git-secrets-out "$STACK_DIR/git_secrets.json"' in deploy
    assert 'render+=(--git-secrets "$STACK_DIR/git_secrets.json")' in deploy


def test_the_bucket_keeps_its_guards_without_task_logs(terraform: Terraform) -> None:
    """task_logs = null but a bucket bundle: the bucket is there, guarded alike; no log expires it."""
    plan = terraform.plan(ENV, list(NO_LOGS))
    assert_bucket_guarded(plan)
    (lifecycle,) = plan.of_type("aws_s3_bucket_lifecycle_configuration").values()
    rules = {r["id"]: r["status"] for r in lifecycle["rule"]}
    assert rules == {  # DAGs stay; database dumps (on by default) expire
        "expire-task-logs": "Disabled",
        "expire-backups": "Enabled",
        "abort-incomplete-uploads": "Enabled",
    }
    roles = plan.of_type("aws_iam_role_policy")
    assert not [a for a in roles if ".logs[" in a], "no task-logs grant without task logs"
    assert sorted(a for a in roles if ".dags[" in a) == [
        'module.cluster.aws_iam_role_policy.dags["default"]',
        'module.cluster.aws_iam_role_policy.dags["manager"]',
    ]
    assert plan.output("dag_bundles")["bucket"] == BUCKET


def role_policies(plan: PlanSummary, role: str) -> list[dict[str, Any]]:
    """Every inline policy on one role (its own, the task-logs one, the DAG one; the managers' git
    credentials and backups ones), by address: a role's own policy names its role by id, unknown
    until applied."""
    own = (
        "module.cluster.module.manager." if role == "manager" else f'module.cluster.module.workers["{role}"].'
    )
    return [
        json.loads(v["policy"])
        for a, v in plan.of_type("aws_iam_role_policy").items()
        if a.startswith(own)
        or a.endswith(f'["{role}"]')
        or (role == "manager" and a.startswith((GIT_GRANT, BACKUPS_GRANT)))
    ]


QUESTIONS = [
    # (action, resource, expected)
    ("s3:GetObject", f"{ARN}/shared/etl.py", "allow"),
    ("s3:GetObject", f"{ARN}/shared/sub/etl.py", "allow"),
    ("s3:ListBucket", ARN, "allow"),  # HeadBucket and listing the folder (key names only)
    ("s3:PutObject", f"{ARN}/shared/etl.py", "deny"),
    ("s3:DeleteObject", f"{ARN}/shared/etl.py", "deny"),
    ("s3:DeleteObjectVersion", f"{ARN}/shared/etl.py", "deny"),
    ("s3:PutObjectTagging", f"{ARN}/shared/etl.py", "deny"),
    ("s3:GetObject", f"{ARN}/sharedx/etl.py", "implicit-deny"),  # only that folder
    ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/shared/etl.py", "implicit-deny"),
    ("s3:ListBucket", "arn:aws:s3:::someone-elses-bucket", "implicit-deny"),
    ("s3:PutBucketPolicy", ARN, "implicit-deny"),
    ("s3:PutObject", f"{ARN}/logs/dag_id=d/attempt=1.log", "allow"),  # task logs still go out
]


@pytest.mark.parametrize("role", ["manager", "default"])
@pytest.mark.parametrize(("action", "resource", "expected"), QUESTIONS)
def test_nodes_read_the_dag_folder_and_write_nothing_under_it(
    plan: PlanSummary, role: str, action: str, resource: str, expected: str
) -> None:
    assert evaluate(role_policies(plan, role), action, resource) == expected


@pytest.mark.parametrize(("role", "expected"), [("manager", "allow"), ("default", "implicit-deny")])
def test_the_dag_grants_reach_no_backup(plan: PlanSummary, role: str, expected: str) -> None:
    """Every grant on a node taken together: only the managers' backups one reads a dump."""
    assert evaluate(role_policies(plan, role), "s3:GetObject", f"{ARN}/backups/metadata.dump") == expected


SSM = "arn:aws:ssm:us-east-1:123456789012:parameter"
TOKEN = f"{SSM}/team/git-token"  # env-aws/dag-bundles.tfvars: git.credential = "/team/git-token"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-123456789012"
VIA_SSM = {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}
GIT_QUESTIONS = [
    # (role, action, resource, context, expected): the managers read the named parameter, decrypt
    # it through SSM only, and nothing else; no worker reads it.
    ("manager", "ssm:GetParameter", TOKEN, {}, "allow"),
    ("manager", "ssm:GetParameter", f"{SSM}/team/git-token-old", {}, "implicit-deny"),
    ("manager", "ssm:GetParameter", f"{SSM}/team", {}, "implicit-deny"),
    ("manager", "ssm:GetParameter", f"{SSM}/other/git-token", {}, "implicit-deny"),
    ("manager", "ssm:GetParameter", TOKEN.replace("us-east-1", "eu-west-1"), {}, "implicit-deny"),
    ("manager", "ssm:GetParametersByPath", f"{SSM}/team", {}, "implicit-deny"),
    ("manager", "ssm:PutParameter", TOKEN, {}, "implicit-deny"),
    ("manager", "ssm:DeleteParameter", TOKEN, {}, "implicit-deny"),
    ("manager", "kms:Decrypt", KEY, VIA_SSM | {"kms:EncryptionContext:PARAMETER_ARN": TOKEN}, "allow"),
    ("manager", "kms:Decrypt", KEY, {"kms:EncryptionContext:PARAMETER_ARN": TOKEN}, "implicit-deny"),
    (
        "manager",
        "kms:Decrypt",
        KEY,
        {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:EncryptionContext:PARAMETER_ARN": TOKEN},
        "implicit-deny",
    ),
    (
        "manager",
        "kms:Decrypt",
        KEY,
        VIA_SSM | {"kms:EncryptionContext:PARAMETER_ARN": f"{SSM}/other/git-token"},
        "implicit-deny",
    ),
    ("manager", "kms:Decrypt", KEY, VIA_SSM, "implicit-deny"),  # no parameter named: not for SSM's reads
    (
        "manager",
        "kms:Encrypt",
        KEY,
        VIA_SSM | {"kms:EncryptionContext:PARAMETER_ARN": TOKEN},
        "implicit-deny",
    ),
    ("default", "ssm:GetParameter", TOKEN, {}, "implicit-deny"),
    (
        "default",
        "kms:Decrypt",
        KEY,
        VIA_SSM | {"kms:EncryptionContext:PARAMETER_ARN": TOKEN},
        "implicit-deny",
    ),
]


@pytest.mark.parametrize(("role", "action", "resource", "context", "expected"), GIT_QUESTIONS)
def test_only_the_managers_read_the_named_git_credential(
    plan: PlanSummary, role: str, action: str, resource: str, context: dict[str, str], expected: str
) -> None:
    assert evaluate(role_policies(plan, role), action, resource, context) == expected


def listed(value: str | list[str]) -> list[str]:
    """A policy statement's Action or Resource: one string or a list."""
    return [value] if isinstance(value, str) else value


def test_no_git_credential_grant_without_a_named_credential(terraform: Terraform) -> None:
    """The README's git example names no credential, the bucket example has no git bundle: neither
    plans a grant on SSM or KMS for any role."""
    for tfvars, _ in README:
        plan = terraform.plan(ENV, [BASE, tfvars])
        policies = plan.of_type("aws_iam_role_policy")
        assert not [a for a in policies if a.startswith(GIT_GRANT)], tfvars.read_text()
        statements = [s for v in policies.values() for s in json.loads(v["policy"])["Statement"]]
        assert not [s for s in statements if any(a.startswith("kms:") for a in listed(s["Action"]))]
        ssm = [
            r for s in statements if "ssm:GetParameter" in listed(s["Action"]) for r in listed(s["Resource"])
        ]
        assert ssm
        assert all(":parameter/airtasks/demo/" in r for r in ssm), "the cluster's own parameters only"


def test_readme_your_dags_examples_plan_and_print_the_command_shown(terraform: Terraform) -> None:
    """README's "Your DAGs": the git and the bucket example plan on envs/aws, and the upload command
    it shows is the one `terraform output dag_bundles` prints."""
    assert len(README) == 2, "a git and a bucket example, each with its commands"
    for tfvars, bash in README:
        plan = terraform.plan(ENV, [BASE, tfvars])
        script = manager_script(plan)
        (settings,) = re.findall(r"^AIRTASKS_STACK_DAG_BUNDLES='(.*)'$", script, re.M)
        assert parse_dag_bundles(settings), tfvars.read_text()
        for name, command in plan.output("dag_bundles")["upload"].items():
            assert command in bash, f"README shows no `{command}` for bundle {name}"
            assert f".upload.{name}" in bash
    (_, bucket_bash) = README[1]
    assert f"aws s3 sync dags/ s3://{BUCKET}/shared/" in bucket_bash


def planned(items: list[pytest.Item]) -> list[Plan]:
    """The plans these tests ask for (the `terraform` fixture starts them in the background)."""
    return [Plan(ENV, TFVARS), Plan(ENV, NO_LOGS), *(Plan(ENV, (BASE, tfvars)) for tfvars, _ in README)]
