"""`airtasks secrets create --git-credential BUNDLE=NAME`: a private repository's credential read
from SSM (moto, in-process) or Secret Manager (a stand-in transport), every one before anything is
made, and made a Swarm secret named by its fingerprint (a fake Swarm): once per value, a rotation a
new one, the old one removed once unused. No value in any output or error."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import docker
import httpx
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from moto import mock_aws

from airtasks.cli import cli
from airtasks.stack import git_credentials as gitcred

TOKEN = "ghp_unit_test_token_3f9a1c"  # a test value
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


# ---- reading the credential --------------------------------------------------------------------


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ssm", region_name="eu-west-1")


def test_ssm_securestring_is_read_and_named_by_its_fingerprint(ssm: Any) -> None:
    ssm.put_parameter(Name="/team/git-token", Value=TOKEN, Type="SecureString")
    credential = gitcred.read_ssm("team", "/team/git-token", ssm)
    assert credential.value == TOKEN.encode()
    assert credential.secret_name == "airtasks_git_team_" + hashlib.sha256(TOKEN.encode()).hexdigest()[:12]
    assert TOKEN not in repr(credential)


@pytest.mark.parametrize(
    ("put", "words"),
    [
        (None, "SSM parameter /team/git-token does not exist in eu-west-1; create it: aws ssm put-parameter"),
        ("String", "is a String, not a SecureString; store the token encrypted"),
    ],
)
def test_a_missing_or_plain_parameter_is_a_clear_error(ssm: Any, put: str | None, words: str) -> None:
    if put:
        ssm.put_parameter(Name="/team/git-token", Value=TOKEN, Type=put)
    with pytest.raises(gitcred.GitCredentialError, match="bundle 'team'") as info:
        gitcred.read_ssm("team", "/team/git-token", ssm)
    assert words in str(info.value)
    assert TOKEN not in str(info.value)


class DeniedSsm:
    """An SSM client whose role may not read the parameter (what AWS answers then)."""

    class meta:  # boto3's attribute
        region_name = "eu-west-1"

    def get_parameter(self, **_: Any) -> Any:
        error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}
        raise ClientError(error, "GetParameter")


def test_a_denied_read_names_the_parameter_and_the_grant() -> None:
    with pytest.raises(gitcred.GitCredentialError) as info:
        gitcred.read_ssm("team", "/team/git-token", DeniedSsm())
    assert "reading SSM parameter /team/git-token in eu-west-1 was denied (AccessDeniedException)" in str(
        info.value
    )
    assert "terraform apply grants it" in str(info.value)


def secret_manager(status: int, data: bytes = KEY.encode()) -> tuple[gitcred.SecretManagerReader, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "computeMetadata" in str(request.url):
            assert request.headers["Metadata-Flavor"] == "Google"
            if request.url.path.endswith("project-id"):
                return httpx.Response(200, text="my-project-123")
            return httpx.Response(200, json={"access_token": "ya29.test", "expires_in": 3599})
        assert request.headers["Authorization"] == "Bearer ya29.test"
        if status != 200:
            return httpx.Response(status, json={"error": {"code": status}})
        name = request.url.path.removeprefix("/v1/").removesuffix(":access")
        return httpx.Response(200, json={"name": name, "payload": {"data": base64.b64encode(data).decode()}})

    reader = gitcred.SecretManagerReader(http=httpx.Client(transport=httpx.MockTransport(answer)))
    return reader, seen


def test_secret_manager_latest_version_of_the_vms_project_or_the_named_one() -> None:
    reader, seen = secret_manager(200)
    assert reader("ops-x", "ops-deploy-key").value == KEY.encode()
    assert (
        seen[-1]
        == "https://secretmanager.googleapis.com/v1/projects/my-project-123/secrets/ops-deploy-key/versions/latest:access"
    )
    reader("ops-x", "projects/keys-456/secrets/ops-deploy-key")
    assert "/projects/keys-456/secrets/ops-deploy-key/versions/latest:access" in seen[-1]


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (404, "does not exist or has no enabled version; create it: gcloud secrets create ops-deploy-key"),
        (403, "was denied; the managers' service account may read only the secrets that dag_bundles names"),
    ],
)
def test_secret_manager_errors_name_the_secret_and_the_fix(status: int, words: str) -> None:
    reader, _ = secret_manager(status)
    with pytest.raises(gitcred.GitCredentialError) as info:
        reader("ops-x", "ops-deploy-key")
    assert "secret ops-deploy-key of project my-project-123" in str(info.value)
    assert words in str(info.value)


def test_one_failing_credential_stops_them_all_before_anything_is_made() -> None:
    read: list[str] = []

    def reader(bundle: str, name: str) -> gitcred.GitCredential:
        read.append(bundle)
        if bundle == "ops-x":
            raise gitcred.GitCredentialError("denied")
        return gitcred.GitCredential(bundle, name, TOKEN.encode())

    with pytest.raises(gitcred.GitCredentialError):
        gitcred.read_all([("team", "/a"), ("ops-x", "/b"), ("more", "/c")], reader)
    assert read == ["team", "ops-x"]


# ---- the Swarm secret --------------------------------------------------------------------------


@dataclass
class FakeSecret:
    name: str
    labels: dict[str, str]
    data: bytes
    store: FakeSecrets
    in_use: bool = False

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Spec": {"Name": self.name, "Labels": self.labels}}

    def remove(self) -> None:
        if self.in_use:
            raise docker.errors.APIError("secret is in use by service x")
        del self.store.items[self.name]


@dataclass
class FakeSecrets:
    items: dict[str, FakeSecret] = field(default_factory=dict)

    def list(self) -> list[FakeSecret]:
        return list(self.items.values())

    def create(self, name: str, data: bytes, labels: dict[str, str]) -> None:
        assert name not in self.items
        self.items[name] = FakeSecret(name, labels, data, self)


@dataclass
class FakeSwarm:
    secrets: FakeSecrets = field(default_factory=FakeSecrets)


def test_created_once_and_a_rotation_makes_a_new_one_and_drops_the_old() -> None:
    swarm: Any = FakeSwarm()
    first = gitcred.GitCredential("team", "/team/git-token", TOKEN.encode())
    results, names = gitcred.create_git_secrets(swarm, [first])
    assert [(r.name, r.outcome) for r in results] == [(first.secret_name, "created")]
    assert names == {"team": first.secret_name}
    made = swarm.secrets.items[first.secret_name]
    assert made.data == TOKEN.encode()
    assert made.labels == {"airtasks.managed-by": "airtasks secrets create", "airtasks.git-bundle": "team"}
    # A re-boot with the same value: the same secret, nothing made.
    results, _ = gitcred.create_git_secrets(swarm, [first])
    assert [r.outcome for r in results] == ["exists"]
    # A rotation while the services still use the old one: the new one is made, the old one stays...
    made.in_use = True
    rotated = gitcred.GitCredential("team", "/team/git-token", b"ghp_rotated")
    results, names = gitcred.create_git_secrets(swarm, [rotated])
    assert [r.outcome for r in results] == ["created"]
    assert names == {"team": rotated.secret_name}
    assert set(swarm.secrets.items) == {first.secret_name, rotated.secret_name}
    # ...until the deploy moved them: the next run removes it.
    made.in_use = False
    results, _ = gitcred.create_git_secrets(swarm, [rotated])
    assert [(r.name, r.outcome) for r in results] == [
        (rotated.secret_name, "exists"),
        (first.secret_name, "removed"),
    ]
    assert set(swarm.secrets.items) == {rotated.secret_name}


def test_the_cli_reads_before_it_touches_docker_and_prints_no_value(
    ssm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing parameter: exit 1 naming it, before Docker is asked anything (a Docker that is not
    there would fail differently)."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    out = tmp_path / "names.json"
    args = [
        "secrets",
        "create",
        "--git-only",
        "--git-credential",
        "team=/team/git-token",
        "--git-secrets-out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "SSM parameter /team/git-token does not exist in eu-west-1" in str(
        result.exception or result.output
    )
    assert not out.exists()


@pytest.mark.parametrize("text", ["team", "Team=/x", "team=", "=/team/git-token"])
def test_git_credential_option_needs_bundle_equals_name(text: str) -> None:
    with pytest.raises(gitcred.GitCredentialError, match="give BUNDLE=NAME"):
        gitcred.parse_git_credential(text)
