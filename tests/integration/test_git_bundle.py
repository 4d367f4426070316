"""A git DAG bundle in the shipped image: Airflow's own GitDagBundle (apache-airflow-providers-git and
the git binary, both in docker/Dockerfile) against a real git server over HTTPS.

The server is `git http-backend` on this machine (tests/support/services/git_server.py). The image
runs with `--network host`, so it reaches the server at 127.0.0.1 as a node reaches your forge. What
the container gets is what the stack renders for the bundle (`airtasks stack render
--dag-bundles`): the dag-processor's and a worker's `dag_bundle_config_list` and the bundle's
connection, taken from the rendered stack file. Inside, tests/support/git_bundle_probe.py builds
the bundle through Airflow's DagBundlesManager, as those services do.

The server's certificate is its own throwaway CA. A user whose git server has a certificate from
a private CA does what this test does: point git at the CA file with `GIT_SSL_CAINFO` (GitHook has
no CA setting of its own; git reads the variable for every clone and fetch). The token of a
private repository is the connection's password (`AIRFLOW_CONN_<ID>`: conn_type git, host the
URL): GitHook hands it to git through a credential helper, never in the URL.

A deploy key goes over ssh, to OpenSSH's sshd on this machine with git-shell as the key's only
command (tests/support/services/git_ssh_server.py, serving the same repositories): the key is the
connection extra's `private_key`, which GitHook writes to a private temporary file for the
GIT_SSH_COMMAND it builds, with the `-o StrictHostKeyChecking` the extra names (accept-new, as the
entry point sets it). The port in an `ssh://user@host:port/path` URL reaches ssh as git's `-p`.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from airtasks.stack.bundles import CONFIG_LIST_ENV, parse_dag_bundles
from airtasks.stack.render import render_stack
from tests.support.docker_daemon import DOCKER_CLI
from tests.support.services.git_server import GitServer, run_git_server
from tests.support.services.git_ssh_server import GitSSHServer, make_key, run_git_ssh_server

pytestmark = pytest.mark.integration

PROBE = Path(__file__).resolve().parents[1] / "support" / "git_bundle_probe.py"
PROBE_PREFIX = "PROBE "  # git_bundle_probe.PREFIX (the probe imports Airflow, so it is not imported here)
CA_IN_CONTAINER = "/etc/airtasks-test/git-ca.pem"
# Bundle storage per Airflow process role: the dag-processor's node and a worker on another node.
DAG_PROCESSOR_STORAGE = "/tmp/bundles-dag-processor"
OTHER_NODE_STORAGE = "/tmp/bundles-other-node"
ANSWER_TIMEOUT = 180.0
ENTRYPOINT = "/usr/local/bin/airtasks-entrypoint"  # docker/Dockerfile


def dag_file(greeting: str) -> str:
    """A user's DAG whose one task's output is `greeting`."""
    return (
        "from airflow.sdk import dag, task\n\n"
        f"GREETING = {greeting!r}\n\n\n"
        '@dag(dag_id="team_hello", schedule=None)\n'
        "def team_hello():\n"
        "    @task\n"
        "    def greet() -> str:\n"
        "        print(GREETING)\n"
        "        return GREETING\n\n"
        "    greet()\n\n\n"
        "team_hello()\n"
    )


def rendered_env(bundles: list[dict[str, Any]], service: str) -> dict[str, str]:
    """The bundle settings `service` gets from the rendered stack file, as its container sees them
    once `docker stack deploy` has read the YAML and undone the `$$` escaping. A bundle that names
    a credential gets a Swarm secret's name, as `airtasks secrets create` would make it."""
    names = {
        b["name"]: f"airtasks_git_{b['name']}_test" for b in bundles if (b.get("git") or {}).get("credential")
    }
    text = render_stack(dag_bundles=parse_dag_bundles(json.dumps(bundles)), git_secret_names=names)
    environment = yaml.safe_load(text)["services"][service]["environment"]
    keep = (CONFIG_LIST_ENV, "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRTASKS_GIT_CONNECTIONS")
    return {
        k: str(v).replace("$$", "$")
        for k, v in environment.items()
        if k in keep or k.startswith("AIRFLOW_CONN_AIRTASKS_DAGS_")
    }


class Probe:
    """One Airflow process in the container (a dag-processor's or a worker's view of the bundles),
    driven through git_bundle_probe.py's stdin."""

    def __init__(
        self, container: str, env: Mapping[str, str], log: Path, through_entrypoint: bool = False
    ) -> None:
        # `-e NAME` without a value: docker takes it from this process's environment, so a token
        # never shows in a command line.
        names = [a for k in env for a in ("-e", k)]
        self._log = log
        self._stderr = log.open("w")
        # Through the image's entry point, as a service starts (it fills private connections).
        entrypoint = [ENTRYPOINT] if through_entrypoint else []
        self._proc = subprocess.Popen(
            [
                DOCKER_CLI,
                "exec",
                "-i",
                *names,
                container,
                *entrypoint,
                "python",
                "/probe/git_bundle_probe.py",
            ],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(PROBE_PREFIX):
                self._answers.put(line[len(PROBE_PREFIX) :])
        self._answers.put(None)

    def ask(self, op: str, key: str, **args: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, "key": key, **args}) + "\n")
        self._proc.stdin.flush()
        try:
            line = self._answers.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            line = None
        assert line is not None, f"no answer to {op} {key}; the probe's log:\n{self._log.read_text()[-3000:]}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def state(self, op: str, key: str, **args: Any) -> dict[str, Any]:
        """`ask`, where an error fails the test with what Airflow and git said."""
        answer = self.ask(op, key, **args)
        assert "error" not in answer, f"{op} {key} failed: {json.dumps(answer, indent=1)}"
        return answer

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()


class StartProbe(Protocol):
    def __call__(
        self, env: Mapping[str, str], storage: str, trust_ca: bool = True, through_entrypoint: bool = False
    ) -> Probe: ...


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with run_git_server(tmp_path_factory.mktemp("git-server")) as server:
        yield server


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory, git_server: GitServer) -> Iterator[GitSSHServer]:
    """sshd serving the HTTPS server's repositories (create and commit through `git_server`)."""
    with run_git_ssh_server(tmp_path_factory.mktemp("git-ssh-server"), git_server.root) as server:
        yield server


def write_secret(container: str, name: str, value: str) -> str:
    """A Swarm secret as a service sees it (/run/secrets/NAME; a directory of the idle container
    here), written through stdin so the value is in no command line. Returns the directory."""
    secrets_dir = f"/tmp/run-secrets-{secrets.token_hex(4)}"
    subprocess.run(
        [
            DOCKER_CLI,
            "exec",
            "-i",
            container,
            "sh",
            "-c",
            f"umask 077; mkdir -p {secrets_dir}; cat > {secrets_dir}/{name}",
        ],
        input=value,
        text=True,
        check=True,
    )
    return secrets_dir


def assert_nowhere_in(container: str, paths: list[str], secret: str, what: str) -> None:
    """No file under `paths` in the container holds `secret` (passed through the environment, never
    on a command line); grep exits 1 when nothing matched."""
    found = subprocess.run(
        [
            DOCKER_CLI,
            "exec",
            "-e",
            "SECRET",
            container,
            "sh",
            "-c",
            'grep -rlF -e "$SECRET" "$@"',
            "sh",
            *paths,
        ],
        env={**os.environ, "SECRET": secret},
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 1, f"{what} is in {found.stdout or found.stderr}"


@pytest.fixture(scope="module")
def container(airtasks_image: str, git_server: GitServer) -> Iterator[str]:
    """The image, idle, on the host's network; the probes run in it with `docker exec`."""
    name = f"airtasks-git-bundle-{secrets.token_hex(4)}"
    subprocess.run(
        [
            DOCKER_CLI,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-v",
            f"{PROBE}:/probe/git_bundle_probe.py:ro",
            "-v",
            f"{git_server.ca_file}:{CA_IN_CONTAINER}:ro",
            airtasks_image,
            "sleep",
            "infinity",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield name
    finally:
        subprocess.run([DOCKER_CLI, "rm", "-f", name], check=False, capture_output=True)


@pytest.fixture
def probes(container: str, tmp_path: Path) -> Iterator[StartProbe]:
    """`start(env, storage)`: a probe with `env`, its own bundle storage path and (unless
    `trust_ca=False`) git trusting the server's CA."""
    started: list[Probe] = []

    def start(
        env: Mapping[str, str], storage: str, trust_ca: bool = True, through_entrypoint: bool = False
    ) -> Probe:
        full = {**env, "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": storage}
        if trust_ca:
            full["GIT_SSL_CAINFO"] = CA_IN_CONTAINER
        probe = Probe(container, full, tmp_path / f"probe-{len(started)}.log", through_entrypoint)
        started.append(probe)
        return probe

    yield start
    for probe in started:
        probe.close()


def test_the_bundle_follows_its_branch_and_a_run_keeps_its_commit(
    git_server: GitServer, probes: StartProbe
) -> None:
    url = git_server.create_repo("team")
    bundle = {"name": "team", "git": {"url": url, "ref": "main", "subdir": "dags", "refresh_seconds": 60}}
    first, second = dag_file("hello from the first commit"), dag_file("hello from the second commit")
    x = git_server.commit(
        "team", {"dags/team_hello.py": first, "README.md": "not a DAG, outside subdir\n"}, "add team_hello"
    )

    dag_processor = probes(rendered_env([bundle], "airflow-dag-processor"), DAG_PROCESSOR_STORAGE)
    cloned = dag_processor.state("open", "tracking", name="team")
    assert cloned["version"] == x
    assert cloned["files"] == {"team_hello.py": first}  # only `subdir`, at commit X
    assert cloned["outputs"] == {"team_hello.greet": "hello from the first commit"}
    assert cloned["errors"] == {}

    y = git_server.commit("team", {"dags/team_hello.py": second}, "team_hello: a new greeting")
    assert dag_processor.state("state", "tracking")["files"] == {"team_hello.py": first}, (
        "the checkout moved before a refresh"
    )
    refreshed = dag_processor.state("refresh", "tracking")
    assert refreshed["version"] == y
    assert refreshed["files"] == {"team_hello.py": second}
    assert refreshed["outputs"] == {"team_hello.greet": "hello from the second commit"}

    # A run that started at X: its tasks ask for bundle version X, after Y landed. On another node
    # the worker clones afresh; on the dag-processor's node it shares the bare repository.
    assert git_server.head("team") == y
    for storage in (OTHER_NODE_STORAGE, DAG_PROCESSOR_STORAGE):
        worker = probes(rendered_env([bundle], "worker-default"), storage)
        pinned = worker.state("open", "run-at-x", name="team", version=x)
        assert pinned["version"] == x, storage
        assert pinned["files"] == {"team_hello.py": first}, storage
        assert pinned["outputs"] == {"team_hello.greet": "hello from the first commit"}, storage
        assert pinned["path"] != refreshed["path"], storage
    # and the branch's checkout is still at Y
    assert dag_processor.state("state", "tracking")["outputs"] == {
        "team_hello.greet": "hello from the second commit"
    }


def test_a_private_repository_clones_only_with_the_connections_token(
    git_server: GitServer, container: str, probes: StartProbe
) -> None:
    token = secrets.token_urlsafe(24)
    url = git_server.create_repo("private", token=token)
    content = dag_file("hello from a private repository")
    sha = git_server.commit("private", {"dags/team_hello.py": content}, "add team_hello")
    bundle = {"name": "private", "git": {"url": url, "subdir": "dags", "credential": "/team/git-token"}}
    env = rendered_env([bundle], "airflow-dag-processor")
    conn = "AIRFLOW_CONN_AIRTASKS_DAGS_PRIVATE"
    assert json.loads(env[conn]) == {"conn_type": "git", "host": url}  # what the stack gives: no secret

    # The rendered connection alone: the server answers 401, git has no credential, and says so.
    before = len(git_server.requests)
    failed = probes(env, "/tmp/bundles-no-token").ask("open", "tracking", name="private")
    assert failed.get("error"), failed
    assert "Error cloning repository" in failed["message"], failed
    assert "could not read Username" in failed["stderr"] or "Authentication failed" in failed["stderr"], (
        failed
    )
    denied = [r for r in git_server.requests[before:] if r.path.startswith("/private.git/")]
    assert denied, "the bundle never reached the server"
    assert {r.status for r in denied} == {401}, denied

    # The same connection with the token as its password: the bundle clones.
    with_token = {**env, conn: json.dumps({"conn_type": "git", "host": url, "password": token})}
    before = len(git_server.requests)
    cloned = probes(with_token, "/tmp/bundles-token").state("open", "tracking", name="private")
    assert cloned["version"] == sha
    assert cloned["files"] == {"team_hello.py": content}
    assert cloned["outputs"] == {"team_hello.greet": "hello from a private repository"}
    served = [r for r in git_server.requests[before:] if r.status == 200]
    assert any(r.path.endswith("/git-upload-pack") for r in served), served
    # Nor does the token stay behind where any DAG author could read it (the bare repository's
    # config, the checkouts).
    assert_nowhere_in(container, ["/tmp/bundles-token"], token, "the token")


def test_a_private_repository_clones_with_the_token_from_its_mounted_secret(
    git_server: GitServer, container: str, probes: StartProbe
) -> None:
    """What the stack does end to end in the image: the dag-processor's and a worker's rendered
    settings name the secret only, the image's entry point (airtasks.stack.git_connections) puts
    the mounted secret's token into the bundle's connection, and Airflow's GitDagBundle clones the
    private repository with it."""
    token = secrets.token_urlsafe(24)
    url = git_server.create_repo("private-secret", token=token)
    content = dag_file("hello through the mounted secret")
    sha = git_server.commit("private-secret", {"dags/team_hello.py": content}, "add team_hello")
    bundle = {"name": "team", "git": {"url": url, "subdir": "dags", "credential": "/team/git-token"}}
    secrets_dir = write_secret(container, "airtasks_git_team", token + "\n")
    for service, storage in (
        ("airflow-dag-processor", "/tmp/bundles-secret-dp"),
        ("worker-default", "/tmp/bundles-secret-w"),
    ):
        env = {**rendered_env([bundle], service), "AIRTASKS_SECRETS_DIR": secrets_dir}
        assert json.loads(env["AIRTASKS_GIT_CONNECTIONS"]) == {
            "AIRFLOW_CONN_AIRTASKS_DAGS_TEAM": "airtasks_git_team"
        }
        assert token not in json.dumps(env)  # what the container's configuration holds
        cloned = probes(env, storage, through_entrypoint=True).state("open", "tracking", name="team")
        assert cloned["version"] == sha, service
        assert cloned["outputs"] == {"team_hello.greet": "hello through the mounted secret"}, service
    # Without the entry point (the same settings, the same secret), the connection has no token.
    env = {**rendered_env([bundle], "airflow-dag-processor"), "AIRTASKS_SECRETS_DIR": secrets_dir}
    failed = probes(env, "/tmp/bundles-secret-none").ask("open", "tracking", name="team")
    assert failed.get("error"), failed


def test_a_server_certificate_git_does_not_trust_fails_the_clone(
    git_server: GitServer, probes: StartProbe
) -> None:
    """Without GIT_SSL_CAINFO the image trusts Debian's CA store only, which does not hold the
    server's CA: the clone fails and git names the certificate (the fix: GIT_SSL_CAINFO)."""
    url = git_server.create_repo("untrusted")
    git_server.commit("untrusted", {"dags/team_hello.py": dag_file("never seen")}, "add team_hello")
    bundle = {"name": "untrusted", "git": {"url": url}}
    env = rendered_env([bundle], "airflow-dag-processor")
    failed = probes(env, "/tmp/bundles-untrusted", trust_ca=False).ask("open", "tracking", name="untrusted")
    assert "Error cloning repository" in failed.get("message", ""), failed
    assert "certificate" in failed["stderr"], failed


def _fingerprint(public_key: str, directory: Path) -> str:
    path = directory / "key.pub"
    path.write_text(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]  # "256 SHA256:... comment (ED25519)"


def test_a_private_repository_clones_over_ssh_with_the_deploy_key_from_its_mounted_secret(
    git_server: GitServer, ssh_server: GitSSHServer, container: str, probes: StartProbe, tmp_path: Path
) -> None:
    """A deploy key end to end: an ssh:// URL with a port, the key in the bundle's Swarm secret, the
    entry point putting it in the connection's `private_key` with strict_host_key_checking
    accept-new, GitHook writing it to a temporary file for GIT_SSH_COMMAND, and the image's ssh
    logging in to a real sshd that lets the key run git-shell only."""
    git_server.create_repo("private-ssh", token=secrets.token_urlsafe(24))  # nothing over HTTPS either
    content = dag_file("hello over ssh")
    sha = git_server.commit("private-ssh", {"dags/team_hello.py": content}, "add team_hello")
    private_key, public_key = make_key(tmp_path / "deploy-key")
    ssh_server.authorize(public_key)
    url = ssh_server.url("private-ssh")
    assert url.startswith(f"ssh://{ssh_server.user}@127.0.0.1:{ssh_server.port}/"), url
    bundle = {"name": "team", "git": {"url": url, "subdir": "dags", "credential": "/team/deploy-key"}}
    conn = "AIRFLOW_CONN_AIRTASKS_DAGS_TEAM"

    # The rendered connection alone (no entry point, so no key): ssh reaches the server, which
    # takes no password and no unknown key, and git says why.
    env = rendered_env([bundle], "airflow-dag-processor")
    assert json.loads(env[conn]) == {"conn_type": "git", "host": url}  # what the stack gives: no secret
    failed = probes(env, "/tmp/bundles-ssh-no-key").ask("open", "tracking", name="team")
    assert failed.get("error"), failed
    assert "Error cloning repository" in failed["message"], failed
    assert "Permission denied (publickey)" in failed["stderr"], failed
    assert "Could not read from remote repository" in failed["stderr"], failed

    secrets_dir = write_secret(container, "airtasks_git_team", private_key)
    for service, storage in (
        ("airflow-dag-processor", "/tmp/bundles-ssh-dp"),
        ("worker-default", "/tmp/bundles-ssh-w"),
    ):
        env = {**rendered_env([bundle], service), "AIRTASKS_SECRETS_DIR": secrets_dir}
        assert json.loads(env["AIRTASKS_GIT_CONNECTIONS"]) == {conn: "airtasks_git_team"}
        assert "PRIVATE KEY" not in json.dumps(env)  # what the container's configuration holds
        cloned = probes(env, storage, through_entrypoint=True).state("open", "tracking", name="team")
        assert cloned["version"] == sha, service
        assert cloned["files"] == {"team_hello.py": content}, service
        assert cloned["outputs"] == {"team_hello.greet": "hello over ssh"}, service

    # It was this key that sshd let in (its log of a connection lands once the connection ended).
    fingerprint = _fingerprint(public_key, tmp_path)
    deadline = time.monotonic() + 10
    while not any(fingerprint in line for line in ssh_server.accepted()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(fingerprint in line for line in ssh_server.accepted()), ssh_server.logs[-3:]

    # accept-new: the first contact trusted the server's host key and ssh remembered it in the
    # Airflow user's known_hosts (hashed, as Debian's ssh_config says), where a later connection
    # is checked against it.
    known = subprocess.run(
        [
            DOCKER_CLI,
            "exec",
            container,
            "ssh-keygen",
            "-F",
            f"[127.0.0.1]:{ssh_server.port}",
            "-f",
            "/home/airflow/.ssh/known_hosts",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ssh_server.host_key in known.stdout, known.stdout + known.stderr
    # Nor does the key stay behind in the bundle storage (GitHook's temporary key file is
    # deleted after each git command).
    key_line = private_key.splitlines()[1]
    assert_nowhere_in(container, ["/tmp/bundles-ssh-dp", "/tmp/bundles-ssh-w"], key_line, "the deploy key")


def test_a_host_key_pinned_in_the_image_is_checked_even_with_accept_new(
    git_server: GitServer, ssh_server: GitSSHServer, container: str, probes: StartProbe, tmp_path: Path
) -> None:
    """accept-new trusts whatever key answers first, but only for a host ssh knows no key of: a
    key listed in /etc/ssh/ssh_known_hosts (which an image built FROM Air-Tasks' can add: the
    stack has no setting for GitHook's `known_hosts_file`) is checked, and a server presenting
    another is refused."""
    git_server.create_repo("pinned", token=secrets.token_urlsafe(24))
    content = dag_file("hello from a pinned host")
    sha = git_server.commit("pinned", {"dags/team_hello.py": content}, "add team_hello")
    private_key, public_key = make_key(tmp_path / "deploy-key")
    ssh_server.authorize(public_key)
    bundle = {
        "name": "team",
        "git": {"url": ssh_server.url("pinned"), "subdir": "dags", "credential": "/x/k"},
    }
    env = {
        **rendered_env([bundle], "airflow-dag-processor"),
        "AIRTASKS_SECRETS_DIR": write_secret(container, "airtasks_git_team", private_key),
    }
    _, other = make_key(tmp_path / "other-host-key")
    impostor = f"[127.0.0.1]:{ssh_server.port} {' '.join(other.split()[:2])}"

    def as_root(script: str, stdin: str = "") -> None:
        subprocess.run(
            [DOCKER_CLI, "exec", "-i", "-u", "0", container, "sh", "-c", script],
            input=stdin,
            text=True,
            check=True,
            capture_output=True,
        )

    try:
        # No key remembered from an earlier contact (the other tests' accept-new), one pinned
        # that is not the server's.
        as_root("rm -f /home/airflow/.ssh/known_hosts; cat > /etc/ssh/ssh_known_hosts", impostor + "\n")
        failed = probes(env, "/tmp/bundles-pin-other", through_entrypoint=True).ask(
            "open", "tracking", name="team"
        )
        assert failed.get("error"), failed
        assert "Host key verification failed" in failed["stderr"], failed
        assert "has changed" in failed["stderr"], failed

        as_root("cat > /etc/ssh/ssh_known_hosts", ssh_server.known_hosts_line() + "\n")
        cloned = probes(env, "/tmp/bundles-pin-right", through_entrypoint=True).state(
            "open", "tracking", name="team"
        )
        assert cloned["version"] == sha
        assert cloned["outputs"] == {"team_hello.greet": "hello from a pinned host"}
    finally:
        as_root("rm -f /etc/ssh/ssh_known_hosts")
