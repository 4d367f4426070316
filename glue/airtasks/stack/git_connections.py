"""At container start: a private git bundle's connection gets its token or deploy key.

    python -m airtasks.stack.git_connections COMMAND [ARG ...]

docker/entrypoint.sh runs this first in the services that clone (dag-processor, workers) when the
stack names private repositories: AIRTASKS_GIT_CONNECTIONS maps the bundle's connection variable
to the Swarm secret mounted for it, names only, e.g.

    {"AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": "airtasks_git_team"}

The connection variable itself (the stack's keyless git connection: conn_type git, host = the
repository's URL) is read, the secret's value added, and the result exported to COMMAND alone,
which this process becomes (exec). An https URL takes the value as the token (the connection's
password; GitHook hands it to git through a credential helper, never in a URL); an ssh or scp-style
URL takes it as the deploy key (the connection extra's `private_key`, which GitHook writes to a
private temporary file for ssh), with `strict_host_key_checking` = accept-new said explicitly.

Why an exported connection variable and not a connections file (LocalFilesystemBackend on a
tmpfs): Airflow always looks in the environment, before the metadata database and beside any
secrets backend the user configures, so nothing in Airflow's configuration changes; the variable
lives in this process tree only, not in the container's configuration (`docker inspect`, `docker
exec env` show the keyless one), and no file holds the value besides the Swarm secret itself.
What a task on the worker can read is the same either way (it runs as the same user as the
worker, which must read the key to clone).

Nothing here prints a value: an error names the secret, the connection and the fix.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SPEC_ENV = "AIRTASKS_GIT_CONNECTIONS"
DONE_ENV = "AIRTASKS_GIT_CONNECTIONS_SET"
SECRETS_DIR = "/run/secrets"


class GitConnectionError(Exception):
    """A connection could not be given its credential; the message names what and the fix."""


def with_credential(connection: Mapping[str, Any], value: bytes, secret: str) -> dict[str, Any]:
    """The connection with the token (https) or deploy key (ssh) added."""
    url = str(connection.get("host") or "")
    try:
        text = value.decode().strip()
    except UnicodeDecodeError:
        raise GitConnectionError(
            f"secret {secret} is not text; store the token or deploy key as text"
        ) from None
    if not text:
        raise GitConnectionError(f"secret {secret} is empty; store the token or deploy key in it")
    if url.startswith(("https://", "http://")):
        if "\n" in text or "PRIVATE KEY" in text:
            raise GitConnectionError(
                f"secret {secret} holds several lines or a private key, but {url} is an https URL: "
                "store a token there, or use the repository's ssh URL for a deploy key"
            )
        return {**connection, "password": text}
    if "PRIVATE KEY-----" not in text:
        raise GitConnectionError(
            f"secret {secret} holds no private key, but {url} is an ssh URL: store the deploy key "
            "(PEM or OpenSSH private key) there, or use the repository's https URL for a token"
        )
    extra = connection.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra else {}
    extra = {"strict_host_key_checking": "accept-new", **extra, "private_key": text + "\n"}
    return {**connection, "extra": extra}


def connections(environ: Mapping[str, str], secrets_dir: Path) -> dict[str, str]:
    """Each named connection variable, with its credential (the values to export)."""
    try:
        spec = json.loads(environ[SPEC_ENV])
    except (KeyError, json.JSONDecodeError) as exc:
        raise GitConnectionError(f"{SPEC_ENV} must be a JSON object ({exc})") from None
    out = {}
    for variable, secret in spec.items():
        if variable not in environ:
            raise GitConnectionError(f"{SPEC_ENV} names {variable}, which is not set: render the stack again")
        path = secrets_dir / secret
        try:
            value = path.read_bytes()
        except OSError as exc:
            raise GitConnectionError(
                f"cannot read {path} ({exc.strerror}) for {variable}: the service must mount the Swarm "
                "secret (airtasks stack render --git-secrets) and it must exist (airtasks secrets create "
                "--git-credential)"
            ) from None
        try:
            connection = json.loads(environ[variable])
        except json.JSONDecodeError:
            raise GitConnectionError(f"{variable} is not a JSON connection: render the stack again") from None
        out[variable] = json.dumps(with_credential(connection, value, secret), separators=(",", ":"))
    return out


def main(argv: Sequence[str]) -> None:
    if not argv:
        sys.exit("usage: python -m airtasks.stack.git_connections COMMAND [ARG ...]")
    secrets_dir = Path(os.environ.get("AIRTASKS_SECRETS_DIR", SECRETS_DIR))
    try:
        os.environ.update(connections(os.environ, secrets_dir))
    except GitConnectionError as exc:
        sys.exit(f"airtasks-entrypoint: private git bundle: {exc}")
    os.environ[DONE_ENV] = "1"
    os.execvp(argv[0], list(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
