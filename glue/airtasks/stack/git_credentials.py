"""Private repositories: a git bundle's credential, from the cloud's secret store to a Swarm secret.

A git bundle names its credential (`git.credential`): an SSM SecureString parameter on AWS, a
Secret Manager secret on GCP, holding an HTTPS token or an SSH deploy key (a private key, PEM or
OpenSSH). The manager that deploys the stack reads each with its own identity (the cluster modules
grant it exactly those) and `airtasks secrets create --git-credential BUNDLE=NAME` makes it a Swarm
secret; the stack mounts it into the services that clone (airtasks.stack.bundles) and the image's
entry point puts it into the bundle's git connection (airtasks.stack.git_connections). The value
is never printed, logged or written anywhere else.

Swarm secrets are immutable, and a running service keeps the one it was deployed with. So the
secret's name ends in a fingerprint of the value (`airtasks_git_<bundle>_<12 hex of its SHA-256>`):
a re-boot with an unchanged credential finds its secret and leaves it; a rotated credential gets a
new secret, which the next `docker stack deploy` hands to the services (they restart). The
fingerprint is 48 bits of a hash of a token or key, which tells nothing about it. A bundle's older
secrets are removed once no service uses them (at the next run; Docker refuses while one does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import docker
import httpx
from botocore.exceptions import BotoCoreError, ClientError

from airtasks.errors import AirtasksError
from airtasks.stack.bundles import NAME_RE

SECRET_PREFIX = "airtasks_git_"
BUNDLE_LABEL = "airtasks.git-bundle"
MANAGED_LABELS = {"airtasks.managed-by": "airtasks secrets create"}
CLOUDS = ("aws", "gcp")
# The shapes the cluster modules accept (modules/dag-bundles): a parameter's full name; a secret's
# id or full name.
SSM_NAME_RE = re.compile(r"^(/[A-Za-z0-9_.-]+){1,15}$")
SECRET_ID_RE = re.compile(r"^(projects/([a-z0-9-]+)/secrets/)?([A-Za-z0-9_-]{1,255})$")


class GitCredentialError(AirtasksError):
    """A git bundle's credential could not be read or made a Swarm secret."""


class SecretAccessError(GitCredentialError):
    """Secret Manager did not give a secret's value: `status` is the HTTP status of the answer (0 when
    Secret Manager was not reached, 200 when the answer held no payload); `where` names the secret."""

    def __init__(self, message: str, where: str, status: int) -> None:
        super().__init__(message)
        self.where = where
        self.status = status


@dataclass(frozen=True)
class GitCredential:
    """One bundle's credential as read from the store. The value never shows in a repr."""

    bundle: str
    name: str  # the parameter's or secret's name, as the user gave it
    value: bytes = field(repr=False)

    @property
    def secret_name(self) -> str:
        """The Swarm secret: the bundle's name and a fingerprint of the value (see the module)."""
        return f"{SECRET_PREFIX}{self.bundle.replace('-', '_')}_{hashlib.sha256(self.value).hexdigest()[:12]}"


def parse_git_credential(text: str) -> tuple[str, str]:
    """`BUNDLE=NAME` (the option's form) as (bundle, name)."""
    bundle, sep, name = text.partition("=")
    if not sep or not NAME_RE.fullmatch(bundle) or not name:
        raise GitCredentialError(
            f"--git-credential {text!r}: give BUNDLE=NAME, the bundle's name (^[a-z][a-z0-9_-]{{0,31}}$) and "
            "the parameter or secret that holds its token or key, e.g. team=/team/git-token"
        )
    return bundle, name


def _check_value(bundle: str, where: str, value: bytes) -> bytes:
    if not value.strip():
        raise GitCredentialError(
            f"git credential of bundle {bundle!r}: {where} is empty; store the token or deploy key in it"
        )
    return value


def read_ssm(bundle: str, name: str, client: Any = None) -> GitCredential:
    """An SSM SecureString parameter, decrypted (ssm:GetParameter; kms:Decrypt via SSM)."""
    if not SSM_NAME_RE.fullmatch(name):
        raise GitCredentialError(
            f"git credential of bundle {bundle!r}: {name!r} is not an SSM parameter name; give its full "
            "name, e.g. /team/git-token"
        )
    ssm = client if client is not None else boto3.client("ssm")
    region = ssm.meta.region_name
    try:
        parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise GitCredentialError(
                f"git credential of bundle {bundle!r}: SSM parameter {name} does not exist in {region}; "
                f"create it: aws ssm put-parameter --region {region} --type SecureString --name {name} "
                "--value file://token (then boot the manager again or rerun airtasks secrets create)"
            ) from None
        if code in {"AccessDeniedException", "AccessDenied"} or "KMS" in code:
            raise GitCredentialError(
                f"git credential of bundle {bundle!r}: reading SSM parameter {name} in {region} was "
                f"denied ({code}); the managers' role may read only the parameters that dag_bundles "
                "names in git.credential (terraform apply grants it), and the parameter's KMS key "
                "must let the account's IAM policies decrypt through SSM"
            ) from None
        raise GitCredentialError(
            f"git credential of bundle {bundle!r}: reading SSM parameter {name} in {region} failed ({code})"
        ) from None
    except BotoCoreError as exc:
        raise GitCredentialError(
            f"git credential of bundle {bundle!r}: cannot reach SSM to read {name}: {type(exc).__name__}"
        ) from None
    if parameter.get("Type") != "SecureString":
        raise GitCredentialError(
            f"git credential of bundle {bundle!r}: SSM parameter {name} is a {parameter.get('Type')}, "
            "not a SecureString; store the token encrypted: aws ssm put-parameter --type SecureString "
            f"--name {name} --overwrite --value file://token"
        )
    value = _check_value(bundle, f"SSM parameter {name}", str(parameter["Value"]).encode())
    return GitCredential(bundle, name, value)


class SecretManagerReader:
    """Secret Manager's REST API with the VM's service-account token from the metadata server
    (httpx, in every image; the endpoints follow the boot script's overrides)."""

    def __init__(self, project: str | None = None, http: httpx.Client | None = None) -> None:
        self.http = http or httpx.Client(timeout=20)
        host = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
        self.metadata = f"http://{host}/computeMetadata/v1"
        api = os.environ.get(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", "https://secretmanager.googleapis.com/"
        )
        self.api = api.rstrip("/") + "/v1"
        self._project = project
        self._token: str | None = None

    def _metadata(self, path: str) -> httpx.Response:
        try:
            answer = self.http.get(f"{self.metadata}/{path}", headers={"Metadata-Flavor": "Google"})
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise GitCredentialError(
                f"cannot read {path} from the metadata server ({type(exc).__name__}); run on the GCE "
                "manager or give --project and GCE_METADATA_HOST"
            ) from None
        return answer

    def project(self) -> str:
        if self._project is None:
            self._project = self._metadata("project/project-id").text.strip()
        return self._project

    def access(self, project: str, secret: str) -> bytes:
        """The payload of the secret's latest enabled version, read with the VM's service account.

        Shared by the git credentials and the external database's password
        (airtasks.stack.database): a failure is a SecretAccessError carrying the HTTP status, and
        each caller words what it means and the fix for its own setting.
        """
        if self._token is None:
            self._token = str(
                self._metadata("instance/service-accounts/default/token").json()["access_token"]
            )
        url = f"{self.api}/projects/{project}/secrets/{secret}/versions/latest:access"
        where = f"Secret Manager secret {secret} of project {project}"
        try:
            answer = self.http.get(url, headers={"Authorization": f"Bearer {self._token}"})
        except httpx.HTTPError as exc:
            raise SecretAccessError(
                f"cannot reach Secret Manager to read {secret} ({type(exc).__name__})", where, 0
            ) from None
        if answer.status_code != 200:
            status = answer.status_code
            raise SecretAccessError(f"reading {where} failed (HTTP {status})", where, status)
        try:
            return base64.b64decode(answer.json()["payload"]["data"])
        except (ValueError, KeyError, TypeError):
            raise SecretAccessError(f"{where} has no readable payload", where, 200) from None

    def __call__(self, bundle: str, name: str) -> GitCredential:
        match = SECRET_ID_RE.fullmatch(name)
        if match is None:
            raise GitCredentialError(
                f"git credential of bundle {bundle!r}: {name!r} is not a Secret Manager secret; give its id "
                "(team-git-token) or full name (projects/P/secrets/team-git-token)"
            )
        project, secret = match.group(2) or self.project(), match.group(3)
        try:
            value = self.access(project, secret)
        except SecretAccessError as exc:
            if exc.status == 404:
                raise GitCredentialError(
                    f"git credential of bundle {bundle!r}: {exc.where} does not exist or has no enabled "
                    f"version; create it: gcloud secrets create {secret} --project {project} "
                    "--data-file=token"
                ) from None
            if exc.status == 403:
                raise GitCredentialError(
                    f"git credential of bundle {bundle!r}: reading {exc.where} was denied; the managers' "
                    "service account may read only the secrets that dag_bundles names in git.credential "
                    "(terraform apply grants roles/secretmanager.secretAccessor on each)"
                ) from None
            raise GitCredentialError(f"git credential of bundle {bundle!r}: {exc}") from None
        where = f"Secret Manager secret {secret} of project {project}"
        return GitCredential(bundle, name, _check_value(bundle, where, value))


Reader = Callable[[str, str], GitCredential]


def reader_for(cloud: str, project: str | None = None) -> Reader:
    """The store `git.credential` names on this cloud."""
    if cloud == "aws":
        return read_ssm
    if cloud == "gcp":
        return SecretManagerReader(project)
    raise GitCredentialError(f"--cloud must be one of {', '.join(CLOUDS)}, got {cloud!r}")


def read_all(pairs: Iterable[tuple[str, str]], reader: Reader) -> list[GitCredential]:
    """Every credential, read before any Swarm secret is made: one that fails stops them all."""
    seen: set[str] = set()
    credentials = []
    for bundle, name in pairs:
        if bundle in seen:
            raise GitCredentialError(
                f"--git-credential names bundle {bundle!r} twice; give one credential per bundle"
            )
        seen.add(bundle)
        credentials.append(reader(bundle, name))
    return credentials


@dataclass(frozen=True)
class GitSecretResult:
    name: str
    outcome: str  # created, exists, removed (an older one no service uses any more)


def create_git_secrets(
    client: docker.DockerClient, credentials: Iterable[GitCredential]
) -> tuple[list[GitSecretResult], dict[str, str]]:
    """One Swarm secret per credential (if absent), and the bundles' older secrets removed where no
    service uses them. Returns what happened and the map bundle => Swarm secret name."""
    results: list[GitSecretResult] = []
    names: dict[str, str] = {}
    try:
        present = {s.name: s for s in client.secrets.list()}
    except docker.errors.APIError as exc:
        raise GitCredentialError(
            f"cannot list Swarm secrets (is this a Swarm manager?): {exc.explanation}"
        ) from None
    for credential in credentials:
        name = credential.secret_name
        names[credential.bundle] = name
        if name in present:
            results.append(GitSecretResult(name, "exists"))
        else:
            labels = MANAGED_LABELS | {BUNDLE_LABEL: credential.bundle}
            try:
                client.secrets.create(name=name, data=credential.value, labels=labels)
            except docker.errors.APIError as exc:
                raise GitCredentialError(f"cannot create secret {name}: {exc.explanation}") from None
            results.append(GitSecretResult(name, "created"))
        for old_name, old in present.items():
            labels = (old.attrs.get("Spec") or {}).get("Labels") or {}
            if old_name == name or labels.get(BUNDLE_LABEL) != credential.bundle:
                continue
            try:
                old.remove()
            except docker.errors.APIError:
                continue  # still in use: the deploy that follows moves the services off it
            results.append(GitSecretResult(old_name, "removed"))
    return results, names


def write_names(path: Path, names: Mapping[str, str]) -> None:
    """The bundles' Swarm secret names (no value) for `airtasks stack render --git-secrets`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(names), indent=2, sort_keys=True) + "\n")


def read_names(path: Path) -> dict[str, str]:
    """What `write_names` wrote, checked."""
    try:
        names = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GitCredentialError(
            f"--git-secrets {path}: cannot read it ({exc}); write it with airtasks "
            "secrets create --git-credential BUNDLE=NAME --git-secrets-out PATH"
        ) from None
    if not isinstance(names, dict) or not all(
        isinstance(b, str) and isinstance(n, str) and n.startswith(SECRET_PREFIX) for b, n in names.items()
    ):
        raise GitCredentialError(
            f"--git-secrets {path}: must map bundle names to Swarm secrets named {SECRET_PREFIX}*, as "
            "airtasks secrets create --git-secrets-out writes it"
        )
    return names
