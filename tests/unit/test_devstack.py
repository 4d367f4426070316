"""`python -m airtasks_dev` (make up / make down): repo discovery, modes, the moto launcher,
terraform variables, the summary."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

import airtasks
from airtasks.cli import local_deployment as state
from airtasks.errors import AirtasksError
from airtasks_dev.devstack import airflow, moto, steps
from airtasks_dev.devstack.cli import MODES, find_repo
from airtasks_dev.devstack.cli import main as dev_main
from airtasks_dev.devstack.moto_serve import OneAtATime
from airtasks_dev.devstack.procs import alive
from airtasks_dev.devstack.steps import AirflowStep, DevContext, MotoStep, SwarmStep, TerraformStep, describe
from airtasks_dev.devstack.terraform import Terraform, _vars

REPO = Path(__file__).resolve().parents[2]


def test_find_repo_from_a_subfolder() -> None:
    assert find_repo(REPO / "envs" / "local") == REPO


def test_find_repo_falls_back_to_the_package_checkout(tmp_path: Path) -> None:
    assert find_repo(tmp_path) == REPO  # editable install: the package lives in the checkout


def test_modes_and_their_steps() -> None:
    assert [s.name for s in MODES["local"]] == [MotoStep.name, TerraformStep.name, AirflowStep.name]
    assert [s.name for s in MODES["swarm"]] == [SwarmStep.name]


def test_cluster_mode_summary_names_the_ui_login_and_how_to_watch_nodes(tmp_path: Path) -> None:
    from airtasks_dev.devstack import cluster  # noqa: PLC0415

    assert [s.name for s in MODES["cluster"]] == [cluster.ClusterStep.name]
    text = cluster.describe(
        {
            "url": "https://10.213.0.10",
            "username": "admin",
            "password_file": "/repo/.run/cluster/admin_password",
            "ca_bundle": "/repo/.run/cluster/tls_cert.pem",
            "manager": "i-0abc",
            "manager_docker": "/repo/.run/cluster/manager.sock",
            "groups": {"default": "airtasks-local-default"},
            "nodes": "/repo/.run/cluster/cloud/nodes/local",
        },
        tmp_path,
    )
    assert "https://10.213.0.10" in text
    assert "/repo/.run/cluster/admin_password" in text
    assert "DOCKER_HOST=unix:///repo/.run/cluster/manager.sock docker node ls" in text
    assert "default: airtasks-local-default" in text


def test_cluster_mode_runs_the_box_with_both_packages_importable() -> None:
    from airtasks_dev.devstack import cluster  # noqa: PLC0415

    path = cluster._import_path().split(os.pathsep)
    assert str(REPO / "dev") == path[0]
    assert str(Path(airtasks.__file__).resolve().parents[1]) in path


def test_the_runtime_cli_has_no_dev_command() -> None:
    from airtasks.cli import cli  # noqa: PLC0415

    assert "dev" not in cli.commands


def test_dev_tool_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        dev_main(["up", "--mode", "cloud"])
    assert exited.value.code == 2
    assert "Invalid value for '--mode': 'cloud' is not one of 'local', 'swarm', 'cluster'." in (
        capsys.readouterr().err
    )


def test_terraform_vars_are_hcl_literals() -> None:
    assert _vars({"airflow_port": 8080, "queues": {"q": {"min_size": 0}}}) == [
        "-var=airflow_port=8080",
        '-var=queues={"q": {"min_size": 0}}',
    ]


def _fake_terraform(tmp_path: Path, script: str) -> Terraform:
    exe = tmp_path / "terraform"
    exe.write_text(f"#!/bin/sh\n{script}\n")
    exe.chmod(0o755)
    tf = Terraform(tmp_path, tmp_path / "work", {})
    tf.binary = str(exe)
    return tf


def test_a_stuck_terraform_is_stopped_with_its_plugins_and_its_log_shows_where_it_was(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.pid"  # a child, as terraform's provider plugins are
    tf = _fake_terraform(
        tmp_path,
        f'sleep 60 & echo $! > {plugin}; echo "module.workers: Still destroying... [10s elapsed]"; wait',
    )
    with pytest.raises(AirtasksError) as stuck:
        tf.stream("destroy", timeout=2)
    # SIGKILL lands at once but the process ends a moment later; a plugin
    # left running would live on for its full minute.
    plugin_pid = int(plugin.read_text())
    deadline = time.monotonic() + 5
    while alive(plugin_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(plugin_pid)
    assert str(stuck.value).endswith(
        f"did not finish within 2s and was stopped (full log: {tf.log}):\n"
        "module.workers: Still destroying... [10s elapsed]"
    )
    assert "$ terraform destroy\nmodule.workers: Still destroying... [10s elapsed]" in tf.log.read_text()


def test_a_failed_terraform_names_its_log_and_quotes_its_last_lines(tmp_path: Path) -> None:
    tf = _fake_terraform(tmp_path, 'echo "Error: DependencyViolation"; exit 1')
    tf.log.parent.mkdir(parents=True)
    tf.log.write_text("an earlier run's output\n")
    with pytest.raises(AirtasksError) as failed:
        tf.stream("destroy")
    assert str(failed.value).endswith(f"(full log: {tf.log}):\nError: DependencyViolation")


def test_make_down_goes_on_past_a_stuck_destroy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto holds everything envs/local applied: a destroy that hangs must not hold `make down`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_terraform(
        bin_dir, 'echo "module.network.aws_vpc.this: Still destroying... [10s elapsed]"; exec sleep 60'
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(steps, "DESTROY_TIMEOUT", 1.0)
    monkeypatch.setattr(MotoStep, "attach", staticmethod(lambda ctx: True))
    run_dir = tmp_path / ".run"
    (run_dir / "terraform").mkdir(parents=True)
    (run_dir / "terraform" / "terraform.tfstate").write_text("{}")
    said: list[str] = []
    TerraformStep().down(steps.DevContext(repo=REPO, run_dir=run_dir, echo=said.append))
    (text,) = said
    assert "terraform destroy in" in text
    assert "did not finish within 1s and was stopped" in text
    assert "module.network.aws_vpc.this: Still destroying" in text
    assert text.endswith("going on; moto, which stops next, takes it all with it")


def test_describe_lists_groups_parameters_and_config() -> None:
    text = describe(
        {
            "manager_instance_id": "i-1",
            "manager_address": "10.0.0.4",
            "ssm_parameters": {"worker_token": "/airtasks/local/swarm/worker-token"},
            "scaler_config": {
                "cluster_name": "local",
                "region": "us-east-1",
                "queues": {
                    "default": {
                        "group": "airtasks-local-default",
                        "min_size": 0,
                        "max_size": 3,
                        "slots_per_node": 2,
                    }
                },
            },
        },
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
    )
    assert "group airtasks-local-default: min 0, max 3, 2 slots per node" in text
    assert "/airtasks/local/swarm/worker-token" in text
    assert '"cluster_name": "local"' in text


def test_moto_starts_in_the_background_and_stops_by_pid(tmp_path: Path) -> None:
    info = moto.start(tmp_path)
    try:
        assert moto.is_running(info)
        assert moto.read(tmp_path) == info
        assert moto.start(tmp_path) == info  # already up: reused, not a second server
    finally:
        assert moto.stop(tmp_path)
    assert not moto.is_running(info)
    assert moto.read(tmp_path) is None
    assert not moto.stop(tmp_path)


def test_each_moto_answers_for_itself_and_a_taken_port_is_refused(tmp_path: Path) -> None:
    """Two servers started side by side hold separate accounts; asking for a port that is taken
    fails with the port in the message, instead of quietly talking to whoever holds it."""
    with moto.run_moto(log=tmp_path / "a.log") as a, moto.run_moto(log=tmp_path / "b.log") as b:
        assert a.port != b.port
        kw: dict[str, Any] = {
            "region_name": "us-east-1",
            "aws_access_key_id": "t",
            "aws_secret_access_key": "t",
        }
        boto3.client("s3", endpoint_url=a.url, **kw).create_bucket(Bucket="only-in-a")
        names = [x["Name"] for x in boto3.client("s3", endpoint_url=b.url, **kw).list_buckets()["Buckets"]]
        assert names == []
        taken = rf"cannot listen on 127.0.0.1:{a.port} for moto"
        with pytest.raises(AirtasksError, match=taken), moto.run_moto(port=a.port):
            pass
        assert boto3.client("s3", endpoint_url=a.url, **kw).head_bucket(Bucket="only-in-a")


def _moto_answering(status: str | list[str], seen: list[bytes]) -> Callable[..., Iterable[bytes]]:
    """A stand-in for moto's app: keeps the body it is handed and answers `status`, or each call
    the next of a list of statuses."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response(status if isinstance(status, str) else status.pop(0), [("Content-Type", "text/xml")])
        return [b"<answer/>"]

    return app


@pytest.mark.parametrize(
    ("action", "target", "status", "logged"),
    [
        ("DescribeInstances", "", "200 OK", False),  # the box's steady polling
        ("", "AmazonSSM.GetParameter", "200 OK", False),
        ("CreateSecurityGroup", "", "200 OK", True),
        ("", "AmazonSSM.PutParameter", "200 OK", True),
        ("CreateSecurityGroup", "", "400 Bad Request", True),  # InvalidGroup.Duplicate
        ("DescribeAutoScalingGroups", "", "500 Internal Server Error", True),
    ],
    ids=["describe", "json-get", "create", "json-put", "create-refused", "describe-failed"],
)
def test_moto_logs_creates_and_refusals_not_the_polling(
    capsys: pytest.CaptureFixture[str], action: str, target: str, status: str, logged: bool
) -> None:
    form = f"Action={action}&Version=2016-11-15&GroupName=nodes".encode() if action else b"{}"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-www-form-urlencoded" if action else "application/x-amz-json-1.1",
        "CONTENT_LENGTH": str(len(form)),
        "wsgi.input": io.BytesIO(form),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    seen: list[bytes] = []
    answered: list[str] = []
    out = OneAtATime(_moto_answering(status, seen))(environ, lambda code, *_: answered.append(code))
    assert (out, seen, answered) == ([b"<answer/>"], [form], [status]), "moto gets the body and answers"
    name = action or target.rsplit(".", 1)[-1]
    line = rf"moto: {name} waited \d+\.\d\ds took \d+\.\d\ds\n"
    assert bool(re.fullmatch(line, capsys.readouterr().err)) is logged


def test_moto_logs_a_create_sent_twice_and_no_read(tmp_path: Path) -> None:
    """Through the real server: the second create's InvalidGroup.Duplicate is in the log next to
    the first, and the Describe* calls around them are not."""
    log = tmp_path / "moto.log"
    with moto.run_moto(log=log) as server:
        kw = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
        ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", **kw)
        (vpc,) = ec2.describe_vpcs()["Vpcs"]
        group = {"GroupName": "nodes", "Description": "nodes", "VpcId": vpc["VpcId"]}
        ec2.create_security_group(**group)
        with pytest.raises(botocore.exceptions.ClientError, match=r"InvalidGroup\.Duplicate"):
            ec2.create_security_group(**group)
        ec2.describe_security_groups()
    calls = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("moto: ")]
    assert calls == ["CreateSecurityGroup", "CreateSecurityGroup"]


def test_moto_answers_a_retried_create_as_it_answered_the_first_try(tmp_path: Path) -> None:
    """An SDK that lost moto's answer sends the call again with the same invocation id: the retry
    gets the first answer rather than a Duplicate error, and only one group exists. A new call (a
    new invocation id) of the same create is still refused, and reads are answered afresh."""
    log = tmp_path / "moto.log"
    with moto.run_moto(log=log) as server:
        kw = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
        ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", **kw)
        tries: list[int] = []

        def once_more(attempts: int, **_: Any) -> float | None:
            """botocore's retry hook: the first try's answer counts as lost, once."""
            tries.append(attempts)
            return 0.0 if attempts == 1 else None

        ec2.meta.events.register_first("needs-retry.ec2.CreateSecurityGroup", once_more)
        (vpc,) = ec2.describe_vpcs()["Vpcs"]
        group = {"GroupName": "nodes", "Description": "nodes", "VpcId": vpc["VpcId"]}
        created = ec2.create_security_group(**group)
        assert tries == [1, 2], "botocore sent the create twice"
        named = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["nodes"]}])
        assert [g["GroupId"] for g in named["SecurityGroups"]] == [created["GroupId"]]
        ec2.meta.events.unregister("needs-retry.ec2.CreateSecurityGroup", once_more)
        with pytest.raises(botocore.exceptions.ClientError, match=r"InvalidGroup\.Duplicate"):
            ec2.create_security_group(**group)
    lines = [line for line in log.read_text().splitlines() if line.startswith("moto: ")]
    assert lines[1] == "moto: CreateSecurityGroup sent again (attempt=2): the first answer (200 OK) given"
    assert [line.split()[1] for line in lines] == ["CreateSecurityGroup"] * 3


def test_moto_keeps_answers_only_of_changes_that_succeeded(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[bytes] = []
    statuses: list[str] = []
    app = OneAtATime(_moto_answering(statuses, seen))
    for action, invocation, status, calls in (
        ("CreateRoute", "a", "200 OK", 1),
        ("CreateRoute", "a", "", 1),  # a retry: the kept answer
        ("CreateRoute", "b", "400 Bad Request", 2),  # a new call: moto answers it
        ("DescribeRouteTables", "c", "200 OK", 3),
        ("DescribeRouteTables", "c", "200 OK", 4),  # a read is answered afresh, retry or not
        ("CreateRoute", "d", "500 Internal Server Error", 5),
        ("CreateRoute", "d", "200 OK", 6),  # the retry of a call that failed is tried afresh
    ):
        statuses[:] = [status] if status else []
        form = f"Action={action}&Version=2016-11-15".encode()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(form)),
            "wsgi.input": io.BytesIO(form),
            "HTTP_AMZ_SDK_INVOCATION_ID": invocation,
            "HTTP_AMZ_SDK_REQUEST": "attempt=2; max=25",
        }
        assert app(environ, lambda *_: None) == [b"<answer/>"]
        assert len(seen) == calls, (action, invocation)
    assert capsys.readouterr().err.count("sent again") == 1


def _deployment(repo: Path) -> Path:
    """A state file as `make up` leaves it in repo/.run/local.json."""
    run = repo / ".run"
    (repo / "envs" / "local").mkdir(parents=True)
    run.mkdir()
    (run / "passwords.json").write_text('{"admin": "s3cret"}')
    (run / "scaler_config.json").write_text("{}")
    record = state.record(
        repo / "envs" / "local",
        run / "terraform" / "terraform.tfstate",
        run / "terraform" / "data",
        run / "scaler_config.json",
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ACCESS_KEY_ID": "testing"},
    )
    path = run / "local.json"
    passwords = str(run / "passwords.json")
    access = {"url": "http://127.0.0.1:8080", "username": "admin", "password_file": passwords}
    path.write_text(json.dumps({**access, **record}))
    return path


def test_state_file_names_the_deployment_of_its_terraform_root_and_config(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    path = _deployment(repo)
    found = state.for_terraform_dir(repo / "envs" / "local")
    assert found is not None
    assert found.state_file == path
    assert found.terraform_state == repo / ".run" / "terraform" / "terraform.tfstate"
    assert found.env == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ACCESS_KEY_ID": "testing",
        "AIRTASKS_AIRFLOW_USERNAME": "admin",
        "AIRTASKS_AIRFLOW_PASSWORD_FILE": str(repo / ".run" / "passwords.json"),
    }
    assert "s3cret" not in path.read_text()
    assert state.for_config_file(repo / ".run" / "scaler_config.json") == found
    # Any other root or config is not the local deployment's: its endpoint must never apply there.
    (repo / "envs" / "aws").mkdir()
    assert state.for_terraform_dir(repo / "envs" / "aws") is None
    (tmp_path / "other.json").write_text("{}")
    assert state.for_config_file(tmp_path / "other.json") is None


def test_state_env_only_fills_gaps(tmp_path: Path) -> None:
    found = state.for_terraform_dir(_deployment(tmp_path / "repo").parents[1] / "envs" / "local")
    assert found is not None
    target = {"AWS_ENDPOINT_URL": "http://elsewhere", "AIRTASKS_AIRFLOW_PASSWORD": "given"}
    added = found.apply_env(target)
    assert added == {"AWS_ACCESS_KEY_ID": "testing", "AIRTASKS_AIRFLOW_USERNAME": "admin"}
    assert target["AWS_ENDPOINT_URL"] == "http://elsewhere"
    assert "AIRTASKS_AIRFLOW_PASSWORD_FILE" not in target


# ---- make up DAGS=folder --------------------------------------------------------------------------

MY_DAG = """
import datetime

from airflow.sdk import dag, task


@dag(dag_id="my_own_dag", schedule=None, start_date=datetime.datetime(2025, 1, 1))
def my_own_dag():
    @task
    def hello():
        print("hello from my folder")

    hello()


my_own_dag()
"""


def _python(env: dict[str, str], *args: str) -> Any:
    """Python in a clean Airflow environment: its last line of output, as JSON."""
    out = subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_make_up_dags_loads_the_folder_as_a_bundle_beside_the_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up DAGS=folder`: the local Airflow gets the repo's dags/ and the folder as bundles;
    Airflow's own bundle manager finds both, and a DAG saved in the folder parses from it."""
    mine = tmp_path / "my-dags"
    mine.mkdir()
    (mine / "my_own_dag.py").write_text(MY_DAG)
    launched: dict[str, Any] = {}
    monkeypatch.setattr(
        airflow,
        "launch_airflow",
        lambda run_dir, port, env, dags_folder: launched.update(env=env, dags=dags_folder),
    )
    ctx = DevContext(repo=REPO, run_dir=tmp_path / "run", echo=lambda _: None, user_dags=mine)
    AirflowStep().up(ctx)
    assert launched["dags"] == REPO / "dags"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRTASKS_"))}
    env.update(
        launched["env"],
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path}/airflow.db",
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "glue")]),
    )
    script = (
        "import json\n"
        "from airflow.dag_processing.bundles.manager import DagBundlesManager\n"
        "print(json.dumps({b.name: str(b.path) for b in DagBundlesManager().get_all_dag_bundles()}))\n"
    )
    bundles = _python(env, "-c", script)
    assert bundles == {"dags-folder": str(REPO / "dags"), "my-dags": str(mine)}
    parsed = _python(env, "-m", "tests.support.dagbag", str(mine))
    assert "my_own_dag" in json.dumps(parsed), parsed
    assert not parsed.get("import_errors"), parsed


def test_make_up_dags_is_local_mode_only_and_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        dev_main(["up", "--mode", "swarm", "--dags", str(tmp_path)])
    assert exited.value.code == 1
    assert "DAGS= works in local mode only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        dev_main(["up", "--dags", str(tmp_path / "absent")])
    assert exited.value.code == 2
    assert "does not exist" in capsys.readouterr().err
