"""Where Airflow is and how to log in: the same rules for `airtasks trigger` and the scaler.

Order: `AIRTASKS_AIRFLOW_URL` / `AIRTASKS_AIRFLOW_USERNAME` / `AIRTASKS_AIRFLOW_PASSWORD` (or
`AIRTASKS_AIRFLOW_PASSWORD_FILE`) from the environment; for whatever is still missing, the state
file `make up` writes (`.run/local.json` in the repo, found from the working directory upwards, else
`$XDG_STATE_HOME/airtasks/local.json`). The state file names the password *file*, never the password.
`AIRTASKS_AIRFLOW_CA_BUNDLE` (or the state file's `ca_bundle`) names a PEM file to verify HTTPS
with, e.g. the stack's self-signed certificate.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from airtasks.errors import AirtasksError

STATE_NAME = "local.json"
DEFAULT_USERNAME = "admin"


class AirflowAccessError(AirtasksError):
    """Airflow cannot be found or logged in to."""


@dataclass(frozen=True)
class AirflowAccess:
    url: str
    username: str
    password: str
    origin: str  # "env" | the state file's path
    verify: bool | str = True  # True, or a CA bundle path

    def __repr__(self) -> str:  # never show the password
        return f"AirflowAccess(url={self.url!r}, username={self.username!r}, origin={self.origin!r})"


def user_state_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "airtasks" / STATE_NAME


def find_state_file(start: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """`.run/local.json` in the working directory or a parent, else the per-user state file."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".run" / STATE_NAME
        if candidate.is_file():
            return candidate
    user = user_state_file(env)
    return user if user.is_file() else None


def password_from_text(text: str, username: str, where: str) -> str:
    """The password in a password file's text: plain text, or a JSON object {username: password}
    (the file of Airflow's simple auth manager, which `make up` names). ValueError names the fix."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    try:
        users = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{where} is not valid JSON") from None
    if not isinstance(users, dict) or username not in users:
        raise ValueError(f"{where} has no password for user {username!r}")
    return str(users[username])


def read_password_file(path: Path, username: str) -> str:
    """A plain-text password file, or a JSON object {username: password} (Airflow's simple auth manager)."""
    try:
        return password_from_text(path.read_text(), username, str(path))
    except OSError as exc:
        raise AirflowAccessError(f"cannot read the Airflow password file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AirflowAccessError(str(exc)) from None


def resolve(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> AirflowAccess:
    """Resolve URL and credentials; raise AirflowAccessError naming what to set when incomplete."""
    env = os.environ if env is None else env
    url = env.get("AIRTASKS_AIRFLOW_URL")
    username = env.get("AIRTASKS_AIRFLOW_USERNAME")
    password = env.get("AIRTASKS_AIRFLOW_PASSWORD")
    if password is None and env.get("AIRTASKS_AIRFLOW_PASSWORD_FILE"):
        password = read_password_file(
            Path(env["AIRTASKS_AIRFLOW_PASSWORD_FILE"]), username or DEFAULT_USERNAME
        )
    origin = "env"
    verify: bool | str = env.get("AIRTASKS_AIRFLOW_CA_BUNDLE") or True
    if url is None or password is None:
        state_path = find_state_file(cwd, env)
        if state_path is not None:
            try:
                state = json.loads(state_path.read_text())
            except (OSError, json.JSONDecodeError):
                raise AirflowAccessError(f"cannot read {state_path}; run `make up` again") from None
            url = url or state.get("url")
            username = username or state.get("username")
            if password is None and state.get("password_file"):
                password = read_password_file(Path(state["password_file"]), username or DEFAULT_USERNAME)
            origin = str(state_path)
            if verify is True and state.get("ca_bundle"):
                verify = str(state["ca_bundle"])
    if not url or password is None:
        raise AirflowAccessError(
            "cannot find Airflow: set AIRTASKS_AIRFLOW_URL, AIRTASKS_AIRFLOW_USERNAME and "
            "AIRTASKS_AIRFLOW_PASSWORD (or AIRTASKS_AIRFLOW_PASSWORD_FILE), or run `make up` first"
        )
    return AirflowAccess(url.rstrip("/"), username or DEFAULT_USERNAME, password, origin, verify)


def get_token(access: AirflowAccess, client: httpx.Client) -> str:
    """A JWT from Airflow's auth manager (`POST /auth/token`)."""
    try:
        resp = client.post(
            f"{access.url}/auth/token", json={"username": access.username, "password": access.password}
        )
    except httpx.HTTPError as exc:
        raise AirflowAccessError(f"cannot reach Airflow at {access.url}: {exc}") from None
    if resp.status_code in (401, 403):
        raise AirflowAccessError(
            f"Airflow at {access.url} refused the login of {access.username!r} (from {access.origin}); "
            "check AIRTASKS_AIRFLOW_USERNAME / AIRTASKS_AIRFLOW_PASSWORD"
        )
    if resp.status_code >= 400:
        raise AirflowAccessError(f"Airflow at {access.url} answered {resp.status_code} to /auth/token")
    return str(resp.json()["access_token"])


def tls_verify(value: bool | str) -> bool | ssl.SSLContext:
    """httpx's `verify` for True/False or a CA bundle path."""
    return ssl.create_default_context(cafile=value) if isinstance(value, str) else value


def api_client(access: AirflowAccess, timeout: float = 30.0) -> httpx.Client:
    """An httpx client for the REST API v2 with a fresh JWT in its Authorization header."""
    client = httpx.Client(timeout=timeout, verify=tls_verify(access.verify))
    token = get_token(access, client)
    client.headers["Authorization"] = f"Bearer {token}"
    return client
