"""The rendered boot scripts: valid bash, shellcheck clean, the right labels and parameter names,
the cloud's own metadata and secret APIs, and never a token."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terraform.render import render_boot_scripts

CASES = ["manager-aws", "manager-gcp", "worker-aws", "worker-gcp"]
SPOT_CASES = ["spot-worker-aws", "spot-worker-gcp"]
SHELLCHECK = (
    str(Path(sys.executable).with_name("shellcheck"))
    if Path(sys.executable).with_name("shellcheck").exists()
    else (shutil.which("shellcheck") or "shellcheck")
)


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return render_boot_scripts()


@pytest.fixture(scope="module")
def with_stack() -> dict[str, str]:
    return render_boot_scripts(stack_image="ghcr.io/acme/airtasks:0.1.0")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.sh"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", CASES + SPOT_CASES)
def test_bash_syntax(scripts: dict[str, str], case: str, tmp_path: Path) -> None:
    subprocess.run(["bash", "-n", str(_write(tmp_path, case, scripts[case]))], check=True)


@pytest.mark.parametrize("case", CASES + SPOT_CASES)
def test_shellcheck_clean(scripts: dict[str, str], case: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [SHELLCHECK, "--severity=style", str(_write(tmp_path, case, scripts[case]))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES)
def test_labels_and_parameter_names(scripts: dict[str, str], case: str) -> None:
    role, cloud = case.split("-")
    script = scripts[case]
    labels = re.search(r"^AIRTASKS_LABELS=\((.*)\)$", script, re.M)
    assert labels, "no AIRTASKS_LABELS line"
    expected = {f"'airtasks.role={role}'", "'airtasks.cluster=demo'", "'airtasks.gpu=none'"}
    if role == "worker":
        expected.add("'airtasks.queue=default'")
    assert set(labels.group(1).split()) == expected
    refs = (
        ["/airtasks/demo/swarm/worker-token", "/airtasks/demo/swarm/manager-address"]
        if cloud == "aws"
        else ["airtasks-demo-worker-token", "airtasks-demo-manager-address"]
    )
    for ref in refs:
        assert f"='{ref}'" in script
    manager_ref = "manager-token"
    assert (manager_ref in script) == (role == "manager"), "only the manager knows the manager token's name"


@pytest.mark.parametrize("case", CASES)
def test_no_token_in_script_and_none_logged(scripts: dict[str, str], case: str) -> None:
    script = scripts[case]
    assert "SWMTKN" not in script
    assert "set -x" not in script
    for line in script.splitlines():
        if re.match(r"\s*(log|warn|die)\b", line):
            assert not re.search(r"\$\{?(JOIN_TOKEN|STORE_VALUE|IMDS_TOKEN|token)\b", line), line
    assert 'docker swarm init --advertise-addr "$NODE_IP" >/dev/null' in script or "worker" in case


@pytest.mark.parametrize("case", CASES + SPOT_CASES)
def test_fits_in_ec2_user_data(scripts: dict[str, str], case: str) -> None:
    """Launch templates carry the script gzip-compressed (`user_data_base64`)."""
    assert len(gzip.compress(scripts[case].encode())) < 16 * 1024


@pytest.mark.parametrize("case", ["manager-aws", "worker-aws"])
def test_aws_uses_imdsv2_and_ssm(scripts: dict[str, str], case: str) -> None:
    script = scripts[case]
    assert "X-aws-ec2-metadata-token-ttl-seconds" in script  # the IMDSv2 session token (PUT)
    assert "aws ssm get-parameter" in script
    assert "--with-decryption" in script
    assert "AIRTASKS_REGION='eu-west-1'" in script
    assert "secretmanager" not in script
    assert "put-parameter" in script


@pytest.mark.parametrize("case", ["manager-gcp", "worker-gcp"])
def test_gcp_uses_metadata_server_and_secret_manager(scripts: dict[str, str], case: str) -> None:
    script = scripts[case]
    assert "Metadata-Flavor: Google" in script
    assert "instance/service-accounts/default/token" in script
    assert "/versions/latest:access" in script
    assert ":addVersion" in script
    assert "AIRTASKS_PROJECT='demo-project'" in script
    assert "aws ssm" not in script


def test_worker_backs_off_within_its_budget(scripts: dict[str, str]) -> None:
    script = scripts["worker-aws"]
    assert "AIRTASKS_JOIN_TIMEOUT='900'" in script
    assert "delay * 2 > 30 ? 30" in script  # bounded back-off
    assert '--advertise-addr "$NODE_IP"' in script


def test_stack_deploy_only_when_a_stack_is_given(scripts: dict[str, str], with_stack: dict[str, str]) -> None:
    assert "AIRTASKS_STACK_IMAGE=''" in scripts["manager-aws"]
    assert "AIRTASKS_STACK_IMAGE='ghcr.io/acme/airtasks:0.1.0'" in with_stack["manager-aws"]
    assert "airtasks secrets create" in with_stack["manager-aws"]
    assert "STACK" not in with_stack["worker-aws"]


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_only_spot_workers_get_the_interruption_watcher(scripts: dict[str, str], cloud: str) -> None:
    spot = scripts[f"spot-worker-{cloud}"]
    watcher = (Path(__file__).parents[2] / "modules/swarm-boot/templates/spot_watcher.py").read_text()
    assert "airtasks-spot-watcher.service" in spot
    assert "--cloud $AIRTASKS_CLOUD" in spot
    assert f"AIRTASKS_CLOUD='{cloud}'" in spot
    # The node runs the tested file, without its whole-line comments.
    code = [ln for ln in watcher.splitlines() if ln.strip() and not re.match(r"\s*#($|[^!])", ln)]
    assert all(ln in spot for ln in code)
    for case in ("worker-aws", "worker-gcp", "manager-aws", "manager-gcp"):
        assert "airtasks-spot-watcher" not in scripts[case], case
        assert "def watch(" not in scripts[case], case


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_embedded_watcher_runs_as_written_to_the_node(
    scripts: dict[str, str], cloud: str, tmp_path: Path
) -> None:
    """The heredoc the boot script writes is Python that compiles and starts (`--help`)."""
    script = scripts[f"spot-worker-{cloud}"]
    (body,) = re.findall(r"<<'AIRTASKS_SPOT_WATCHER'\n(.*?)\nAIRTASKS_SPOT_WATCHER\n", script, re.S)
    path = tmp_path / "spot_watcher.py"
    path.write_text(body + "\n")
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--endpoint" in proc.stdout


BACKUPS = (
    '{"url":"s3://airtasks-demo-log-123456789012-eu-west-1/backups","region":"eu-west-1","every_minutes":60}'
)


@pytest.mark.parametrize(
    ("setting", "said"), [(BACKUPS, f"{json.loads(BACKUPS)['url']} every 60 min"), ("", "off")]
)
def test_the_manager_renders_and_logs_the_backups_setting(
    with_stack: dict[str, str], setting: str, said: str, tmp_path: Path
) -> None:
    """`--backups` reaches the render only when set; the boot log says where dumps go, or `off`; and
    a private AWS endpoint (the cluster in a box) reaches the `db-backup` service only when the stack
    has one (an override naming a service the stack lacks would fail the deploy)."""
    script = with_stack["manager-aws"]
    assert "AIRTASKS_STACK_BACKUPS=''" in script  # this render passes no backups
    assert '[[ -z "$AIRTASKS_STACK_BACKUPS" ]] || render+=(--backups "$AIRTASKS_STACK_BACKUPS")' in script
    (said_code,) = re.findall(r"^(  local backups=off\n.*?\|\| backups=on)$", script, re.M | re.S)
    (override,) = re.findall(r"^(write_scaler_override\(\) \{\n.*?\n\})$", script, re.M | re.S)
    said_fn = f'f() {{\n{said_code}\n  echo "$backups"\n}}'
    run = f"{override}\n{said_fn}\nf\nwrite_scaler_override {tmp_path}/o.json\n"
    env = {
        "PATH": "/usr/bin:/bin",
        "AIRTASKS_STACK_BACKUPS": setting,
        "AIRTASKS_STACK_SCALER_CONFIG": "",
        "AIRTASKS_STACK_QUEUES": "default:4",
        "AWS_ENDPOINT_URL": "http://10.213.0.1:5000",
    }
    proc = subprocess.run(["bash", "-c", run], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == said
    services = json.loads((tmp_path / "o.json").read_text())["services"]
    assert ("db-backup" in services) == bool(setting)
