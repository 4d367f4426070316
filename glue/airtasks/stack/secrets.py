"""`airtasks secrets create`: the stack's Swarm secrets, generated once, never printed.

Each secret is created only if absent (so a re-run never rotates a key that encrypted data), from
`secrets` / `cryptography`; the TLS certificate and key are the user's own files if given, else a
self-signed pair for the names given with `--tls-hostname`. With `--git-credential BUNDLE=NAME`, a
private repository's token or deploy key is read from the cloud's secret store (SSM, Secret
Manager) and made a Swarm secret too (airtasks.stack.git_credentials), read before anything is made.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click
import docker
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airtasks.errors import AirtasksError
from airtasks.stack import git_credentials as gitcred

FERNET_KEY = "airtasks_fernet_key"
API_SECRET_KEY = "airtasks_api_secret_key"  # also Airflow's JWT secret
POSTGRES_PASSWORD = "airtasks_postgres_password"
RABBITMQ_PASSWORD = "airtasks_rabbitmq_password"
ADMIN_PASSWORD = "airtasks_admin_password"
TLS_CERT = "airtasks_tls_cert"
TLS_KEY = "airtasks_tls_key"
SECRET_NAMES = (
    FERNET_KEY,
    API_SECRET_KEY,
    POSTGRES_PASSWORD,
    RABBITMQ_PASSWORD,
    ADMIN_PASSWORD,
    TLS_CERT,
    TLS_KEY,
)
LABELS = {"airtasks.managed-by": "airtasks secrets create"}

Outcome = Literal["created", "exists"]


class SecretsError(AirtasksError):
    """A secret could not be created."""


@dataclass(frozen=True)
class SecretResult:
    name: str
    outcome: Outcome


def _password() -> bytes:
    # URL-safe: passwords go into connection URLs (quoted all the same by airtasks-secret-url).
    return secrets.token_urlsafe(24).encode()


def self_signed(hostnames: Iterable[str], days: int = 825) -> tuple[bytes, bytes]:
    """A self-signed EC P-256 certificate (PEM) and its key (PEM) for these names / addresses."""
    names = list(dict.fromkeys(hostnames)) or ["localhost"]
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def existing_secrets(client: docker.DockerClient) -> set[str]:
    return {s.name for s in client.secrets.list()}


def create_secrets(
    client: docker.DockerClient,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_hostnames: Iterable[str] = ("localhost", "127.0.0.1"),
    given: Mapping[str, bytes] | None = None,
    on_admin_password: Callable[[bytes], None] | None = None,
    on_tls_cert: Callable[[bytes], None] | None = None,
) -> list[SecretResult]:
    """Create every stack secret that does not exist yet; return what happened to each.

    `given` lets a caller supply a value (e.g. a test's own admin password). `on_admin_password`
    receives the admin password only when this call generated it (to store it for the user);
    `on_tls_cert` the certificate (public) when this call created its secret.
    """
    if (tls_cert is None) != (tls_key is None):
        raise SecretsError("give both --tls-cert and --tls-key, or neither (a self-signed pair is made)")
    try:
        present = existing_secrets(client)
    except docker.errors.APIError as exc:
        raise SecretsError(
            f"cannot list Swarm secrets (is this a Swarm manager?): {exc.explanation}"
        ) from None
    given = dict(given or {})
    if tls_cert is not None and tls_key is not None:
        given.setdefault(TLS_CERT, tls_cert.read_bytes())
        given.setdefault(TLS_KEY, tls_key.read_bytes())
    elif TLS_CERT not in present or TLS_KEY not in present:
        if (TLS_CERT in present) != (TLS_KEY in present):
            raise SecretsError(
                f"only one of {TLS_CERT} / {TLS_KEY} exists; remove it (docker secret rm) to make a new pair"
            )
        cert, key = self_signed(tls_hostnames)
        given.setdefault(TLS_CERT, cert)
        given.setdefault(TLS_KEY, key)
    generators: dict[str, Callable[[], bytes]] = {
        FERNET_KEY: Fernet.generate_key,
        API_SECRET_KEY: lambda: secrets.token_urlsafe(48).encode(),
        POSTGRES_PASSWORD: _password,
        RABBITMQ_PASSWORD: _password,
        ADMIN_PASSWORD: _password,
    }
    results: list[SecretResult] = []
    for name in SECRET_NAMES:
        if name in present:
            results.append(SecretResult(name, "exists"))
            continue
        value = given[name] if name in given else generators[name]()
        try:
            client.secrets.create(name=name, data=value, labels=LABELS)
        except docker.errors.APIError as exc:
            raise SecretsError(f"cannot create secret {name}: {exc.explanation}") from None
        if name == ADMIN_PASSWORD and name not in given and on_admin_password is not None:
            on_admin_password(value)
        if name == TLS_CERT and on_tls_cert is not None:
            on_tls_cert(value)
        results.append(SecretResult(name, "created"))
    return results


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to a new file only its owner can read (refuses to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@click.group("secrets")
def secrets_command() -> None:
    """The stack's Swarm secrets."""


@secrets_command.command("create")
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM certificate."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key."
)
@click.option(
    "--tls-hostname",
    "tls_hostnames",
    multiple=True,
    default=("localhost", "127.0.0.1"),
    show_default=True,
    help="Name or address for the self-signed certificate; repeat.",
)
@click.option(
    "--admin-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="If the admin password is generated now, also write it here (mode 0600; must not exist).",
)
@click.option(
    "--tls-cert-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="If the TLS certificate secret is created now, also write the certificate (public PEM, what "
    "clients trust) here.",
)
@click.option(
    "--git-credential",
    "git_credentials",
    multiple=True,
    metavar="BUNDLE=NAME",
    help="A git bundle's token or deploy key: the SSM SecureString parameter (aws) or Secret Manager "
    "secret (gcp) that holds it, made the Swarm secret airtasks_git_<bundle>_<fingerprint>; repeat.",
)
@click.option(
    "--cloud",
    type=click.Choice(gitcred.CLOUDS),
    default="aws",
    show_default=True,
    envvar="AIRTASKS_CLOUD",
    help="Where --git-credential names are: SSM (aws; region from AWS_DEFAULT_REGION) or Secret "
    "Manager (gcp).",
)
@click.option(
    "--project",
    envvar="AIRTASKS_PROJECT",
    help="gcp: the project of secrets given by id (default: the VM's, from the metadata server).",
)
@click.option(
    "--git-secrets-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bundles' Swarm secret names (JSON, no value) here, for stack render --git-secrets.",
)
@click.option(
    "--git-only",
    is_flag=True,
    help="Only the --git-credential secrets (a rotation by hand), not the stack's own.",
)
def create_command(
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_hostnames: tuple[str, ...],
    admin_password_file: Path | None,
    tls_cert_out: Path | None,
    git_credentials: tuple[str, ...],
    cloud: str,
    project: str | None,
    git_secrets_out: Path | None,
    git_only: bool,
) -> None:
    """Create the stack's secrets that do not exist yet (values are never printed).

    Run on a Swarm manager (DOCKER_HOST is honoured). Read the admin password later on the
    manager with: docker exec $(docker ps -q -f name=airtasks_airflow-apiserver | head -1)
    cat /run/secrets/airtasks_admin_password
    """
    if admin_password_file is not None and admin_password_file.exists():
        raise SecretsError(f"{admin_password_file} exists; choose a new path (it is never overwritten)")
    pairs = [gitcred.parse_git_credential(text) for text in git_credentials]
    if git_only and not pairs:
        raise SecretsError("--git-only needs at least one --git-credential BUNDLE=NAME")
    # Every credential first: a missing or denied one stops the command before anything is made.
    credentials = gitcred.read_all(pairs, gitcred.reader_for(cloud, project)) if pairs else []
    client = docker.from_env()

    def keep(password: bytes) -> None:
        if admin_password_file is not None:
            write_private_file(admin_password_file, password)

    def publish(cert: bytes) -> None:
        if tls_cert_out is not None:
            tls_cert_out.parent.mkdir(parents=True, exist_ok=True)
            tls_cert_out.write_bytes(cert)
            tls_cert_out.chmod(0o644)

    if not git_only:
        for result in create_secrets(
            client,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_hostnames=tls_hostnames,
            on_admin_password=keep,
            on_tls_cert=publish,
        ):
            click.echo(f"{result.outcome:8} {result.name}")
    if pairs:
        git_results, names = gitcred.create_git_secrets(client, credentials)
        for git_result in git_results:
            click.echo(f"{git_result.outcome:8} {git_result.name}")
        if git_secrets_out is not None:
            gitcred.write_names(git_secrets_out, names)
