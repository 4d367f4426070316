"""A real git server over ssh for the tests: OpenSSH's `sshd` with `git-shell` as the only command.

It serves the bare repositories under `root` (pass a GitServer's root to serve the same ones its
HTTPS side does, and create and commit to them there). Everything is in a temporary directory: its
own host key, config and authorized_keys; nothing of the machine's /etc/ssh is read. Only public
key authentication (no password, no PAM); a key is authorised with `authorize`, restricted to
`git-shell` (no pty, no forwarding: what a forge's deploy key may do), read-only or not is up to
the repository. sshd runs in inetd mode (`-i`) for each connection accepted on a socket bound here
to a free loopback port: no other process can take the port between choosing and binding it, as it
could if sshd chose it itself.

with run_git_server(tmp_path / "https") as https, run_git_ssh_server(tmp_path / "ssh", https.root) as ssh:
    https.create_repo("team"); sha = https.commit("team", {...}, "add a")
    private, public = make_key(tmp_path / "deploy")
    ssh.authorize(public)
    url = ssh.url("team")                          # ssh://root@127.0.0.1:<port>/<root>/team.git

The user in the URL is the one running the tests: sshd logs a client in as a real account, and
that account must read (and for a push, write) the repositories, which the test process created.
As root (the CI machine) that is root, allowed only with a forced command (PermitRootLogin
forced-commands-only); anyone else runs sshd unprivileged, which can then only log in as itself.
A separate `git` account would need useradd on the machine and repositories it owns: more moving
parts for no more realism (a forge's `git@` is just a name too).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = "apt-get install -y --no-install-recommends openssh-server"
# sshd refuses to start as root without its privilege separation directory, which Debian's
# package creates at boot (systemd tmpfiles), not on install: in a container it may be missing.
PRIVSEP_DIR = Path("/run/sshd")


def _find(program: str, *fallbacks: str) -> str:
    found = shutil.which(program) or next((p for p in fallbacks if os.access(p, os.X_OK)), None)
    if found is None:
        raise RuntimeError(f"{program} is not installed; the ssh git server needs it: {INSTALL_HINT}")
    return found


def make_key(path: Path, comment: str = "airtasks-test-deploy-key") -> tuple[str, str]:
    """A new passphrase-less ed25519 key pair at `path` and `path`.pub, as a user makes a deploy
    key (`ssh-keygen -t ed25519 -N ""`); returns (private key text, public key line)."""
    keygen = _find("ssh-keygen")
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_text(), path.with_name(path.name + ".pub").read_text().strip()


@dataclass
class GitSSHServer:
    """The running server: `url(name)` of each repository under `root`."""

    root: Path
    directory: Path
    host: str
    user: str
    port: int = 0
    host_key: str = ""  # the server's public host key line, "ssh-ed25519 AAAA..."
    logs: list[str] = field(default_factory=list)  # sshd's log of each connection, once it ended
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def authorized_keys(self) -> Path:
        return self.directory / "authorized_keys"

    def url(self, name: str) -> str:
        # git-shell takes the path as the client sends it: the repository's absolute path.
        return f"ssh://{self.user}@{self.host}:{self.port}{self.root}/{name}.git"

    def known_hosts_line(self) -> str:
        """The line that pins this server's host key in a known_hosts file."""
        return f"[{self.host}]:{self.port} {self.host_key}"

    def authorize(self, public_key: str) -> None:
        """Let `public_key` in, for git only: the forced command hands what the client asked for
        (`git-upload-pack '/path'`) to git-shell, which runs nothing but git's transport commands;
        `restrict` drops pty, agent, port and X11 forwarding."""
        git_shell = _find("git-shell", "/usr/bin/git-shell", "/usr/lib/git-core/git-shell")
        line = f'command="{git_shell} -c \\"$SSH_ORIGINAL_COMMAND\\"",restrict {public_key.strip()}\n'
        with self.authorized_keys.open("a") as keys:
            keys.write(line)

    def accepted(self) -> list[str]:
        """sshd's "Accepted publickey ..." lines so far: who got in, with which key."""
        with self.lock:
            return [line for log in self.logs for line in log.splitlines() if "Accepted publickey" in line]


def _config(server: GitSSHServer, host_key: Path) -> str:
    root_login = "forced-commands-only" if os.getuid() == 0 else "no"
    return "\n".join(
        [
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {server.authorized_keys}",
            "AuthorizedPrincipalsFile none",
            # The files are in pytest's temporary directory under a world-writable /tmp, which
            # StrictModes would take for a path anyone can swap the keys in.
            "StrictModes no",
            "UsePAM no",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            f"PermitRootLogin {root_login}",
            f"AllowUsers {server.user}",
            "PermitUserEnvironment no",
            "AcceptEnv GIT_PROTOCOL",  # git's protocol v2 request, as forges accept it
            "PrintMotd no",
            "PidFile none",
            "LogLevel VERBOSE",
            "",
        ]
    )


@contextlib.contextmanager
def run_git_ssh_server(directory: Path, root: Path, host: str = "127.0.0.1") -> Iterator[GitSSHServer]:
    """Serve the bare repositories under `root` over ssh on a free port of `host`. Fails (never
    skips) when OpenSSH's server is not installed, saying how to install it."""
    sshd = _find("sshd", "/usr/sbin/sshd")
    directory.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwuid(os.getuid()).pw_name
    server = GitSSHServer(root=root, directory=directory, host=host, user=user)
    server.authorized_keys.touch()
    host_key = directory / "host_ed25519"
    _, server.host_key = make_key(host_key, comment="airtasks-test-git-ssh-host")
    server.host_key = " ".join(server.host_key.split()[:2])
    config = directory / "sshd_config"
    config.write_text(_config(server, host_key))
    if os.getuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    checked = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"sshd rejects the test config {config}: {checked.stderr.strip()}")

    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(16)
    server.port = int(listener.getsockname()[1])
    stopping = threading.Event()
    running: list[subprocess.Popen[bytes]] = []

    def serve(conn: socket.socket) -> None:
        # sshd -i: this one connection on its stdin and stdout; -e: its log on stderr.
        with conn:
            proc = subprocess.Popen(
                [sshd, "-i", "-e", "-f", str(config)],
                stdin=conn.fileno(),
                stdout=conn.fileno(),
                stderr=subprocess.PIPE,
            )
        running.append(proc)
        _, err = proc.communicate()
        with server.lock:
            server.logs.append(err.decode(errors="replace"))

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the server is stopping
            threading.Thread(target=serve, args=(conn,), name="git-ssh-conn", daemon=True).start()

    thread = threading.Thread(target=accept, name="git-ssh-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=10)
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
