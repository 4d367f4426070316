"""A real git server over HTTPS for the tests: Debian's `git http-backend` behind a small CGI shim.

All git protocol work (ref advertisement, protocol v2, pack negotiation) is git's own; the shim only
turns an HTTP request into the CGI environment `git http-backend` reads, streams the request body
to it and its CGI response back. It serves the bare repositories under its root, with its own
throwaway certificate (self-signed, so it is its own CA: clients trust `ca_file`). A repository
created with a token stands in for a private one: without HTTP basic auth carrying that token as
the password (any user name, as with a forge's access token) the answer is 401.

with run_git_server(tmp_path) as server:
    url = server.create_repo("team")                       # https://127.0.0.1:<port>/team.git
    sha = server.commit("team", {"dags/a.py": "..."}, "add a")
    # clients: GIT_SSL_CAINFO=server.ca_file git clone <url>
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import io
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airtasks.stack.secrets import self_signed

GIT = shutil.which("git") or "/usr/bin/git"
BRANCH = "main"
# Fixed identity and no user or system config: a developer's ~/.gitconfig (signing, hooks,
# templates) must change neither the commits nor the server's behaviour.
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Air-Tasks tests",
    "GIT_AUTHOR_EMAIL": "tests@airtasks.invalid",
    "GIT_COMMITTER_NAME": "Air-Tasks tests",
    "GIT_COMMITTER_EMAIL": "tests@airtasks.invalid",
}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One request the server answered: what a test may check (e.g. that a token was sent)."""

    method: str
    path: str
    status: int
    user: str | None


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull, **_GIT_ENV}
    out = subprocess.run([GIT, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout.strip()


class _ChunkedReader:
    """The body of a `Transfer-Encoding: chunked` request, de-chunked: git's client sends a large
    POST (over http.postBuffer) that way, with no Content-Length."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._raw = raw
        self._left = 0
        self._done = False

    def read(self, size: int) -> bytes:
        if self._done:
            return b""
        if self._left == 0:
            line = self._raw.readline()
            self._left = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if self._left == 0:
                # The trailer (usually empty) ends at a blank line.
                while self._raw.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        data = self._raw.read(min(size, self._left))
        self._left -= len(data)
        if self._left == 0:
            self._raw.readline()  # the CRLF after each chunk
        return data


class _LimitedReader:
    """Exactly Content-Length bytes of the request body (the connection may carry more)."""

    def __init__(self, raw: io.BufferedIOBase, length: int) -> None:
        self._raw = raw
        self._left = length

    def read(self, size: int) -> bytes:
        if self._left <= 0:
            return b""
        data = self._raw.read(min(size, self._left))
        self._left -= len(data)
        return data


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1, as git's client speaks it: keep-alive, and git's answer streamed in chunks (its
    # length is known only when git is done).
    protocol_version = "HTTP/1.1"
    server: _HTTPSServer

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, *args: object) -> None:
        pass  # the requests are kept in GitServer.requests instead of on the test's output

    def _authorised(self, repo: str) -> tuple[bool, str | None]:
        token = self.server.git.tokens.get(repo)
        header = self.headers.get("Authorization", "")
        user: str | None = None
        password = ""
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = None
        if token is None:
            return True, user
        # compare_digest: no timing hint about the token, as a real server would not give one.
        return user is not None and hmac.compare_digest(password.encode(), token.encode()), user

    def _record(self, status: int, user: str | None) -> None:
        # Called as the status goes out, before the body's end: by the time a client is done with
        # an answer, its request is in the list.
        path = urlsplit(self.path).path
        with self.server.git.lock:
            self.server.git.requests.append(Request(self.command, path, status, user))

    def _cgi(self) -> None:
        split = urlsplit(self.path)
        repo = split.path.lstrip("/").split("/", 1)[0].removesuffix(".git")
        ok, user = self._authorised(repo)
        if not ok:
            self._record(401, user)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="airtasks-test-git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(self.server.git.root),
            "GIT_HTTP_EXPORT_ALL": "1",  # every repository under the root, no git-daemon-export-ok
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": split.path,
            "QUERY_STRING": split.query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        if user is not None:
            env["REMOTE_USER"] = user
        if protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = protocol  # protocol v2: http-backend hands it to upload-pack
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding  # git gzips large bodies; http-backend inflates
        body: _ChunkedReader | _LimitedReader | None = None
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = _ChunkedReader(self.rfile)  # no CONTENT_LENGTH: http-backend reads to EOF
        elif (length := self.headers.get("Content-Length")) is not None:
            env["CONTENT_LENGTH"] = length
            body = _LimitedReader(self.rfile, int(length))
        self._run_backend(env, body, user)

    def _run_backend(
        self, env: dict[str, str], body: _ChunkedReader | _LimitedReader | None, user: str | None
    ) -> None:
        proc = subprocess.Popen(
            [GIT, "http-backend"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        # The body goes in from a thread while the answer is read here: git may start answering
        # before it has read everything, and a full pipe either way would stall both sides.
        def feed() -> None:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                while body is not None and (data := body.read(_CHUNK)):
                    stdin.write(data)
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.close()

        errors: list[bytes] = []
        feeder = threading.Thread(target=feed, daemon=True)
        drainer = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
        feeder.start()
        drainer.start()
        status, headers = 200, list[tuple[str, str]]()
        # The CGI header block: "Name: value" lines up to a blank one; "Status: 404 Not Found"
        # is the HTTP status, everything else an HTTP header.
        while (raw := stdout.readline()) not in (b"\r\n", b"\n"):
            if not raw:  # git ended before its headers did: the client must not take it for a 200
                status, headers = 502, []  # what git sent so far may be half a header
                break
            name, _, value = raw.rstrip(b"\r\n").decode("latin-1").partition(":")
            if name.strip().lower() == "status":
                status = int(value.strip().split(" ", 1)[0])
            else:
                headers.append((name.strip(), value.strip()))
        self._record(status, user)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while data := stdout.read(_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        feeder.join(timeout=30)
        if feeder.is_alive() or (body is not None and body.read(_CHUNK)):
            # git stopped reading early: what is left of the body would be taken for the next
            # request on this connection.
            self.close_connection = True
        code = proc.wait(timeout=60)
        drainer.join(timeout=30)
        if code != 0:
            self.server.git.backend_errors.append(b"".join(errors).decode(errors="replace"))


class _HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, git: GitServer) -> None:
        self.context = context
        self.git = git
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS per connection, in that connection's thread: a handshake on the listening socket
        # would let one slow or failing client hold up every other.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # A client that does not trust the certificate ends here; the test may look.
            self.git.tls_errors.append(str(exc))
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            # close_notify before the close: GnuTLS (Debian's git) reports a connection closed
            # without it as "non-properly terminated".
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                tls.unwrap()
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-answer is not the test's failure


@dataclass
class GitServer:
    """The running server: `url(name)` of each repository, its CA in `ca_file`."""

    root: Path  # the bare repositories, `<name>.git`
    work: Path  # a working clone per repository, for `commit`
    host: str
    port: int = 0
    ca_file: Path = field(default_factory=Path)
    tokens: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    backend_errors: list[str] = field(default_factory=list)
    tls_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/{name}.git"

    def create_repo(self, name: str, token: str | None = None) -> str:
        """A new empty bare repository whose HEAD is `main`; with `token`, only a client sending
        it as the basic-auth password may read it. Returns its URL."""
        _git("init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(self.root / f"{name}.git"))
        if token is not None:
            self.tokens[name] = token
        return self.url(name)

    def commit(self, name: str, files: Mapping[str, str | None], message: str, branch: str = BRANCH) -> str:
        """Write `files` (path -> content; None deletes it) in one commit on `branch` and push it
        to the served repository, as a developer would; returns the commit's sha."""
        clone = self.work / name
        if not clone.exists():
            # Straight from the bare repository's path: the helper needs no token, and the HTTPS
            # side is then exercised only by the clients under test.
            _git("clone", "--quiet", str(self.root / f"{name}.git"), str(clone))
        _git("checkout", "--quiet", "-B", branch, cwd=clone)
        with contextlib.suppress(RuntimeError):  # an empty repository has nothing to pull
            _git("pull", "--quiet", "--ff-only", "origin", branch, cwd=clone)
        for rel, content in files.items():
            path = clone / rel
            if content is None:
                _git("rm", "--quiet", "--", rel, cwd=clone)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            _git("add", "--", rel, cwd=clone)
        _git("commit", "--quiet", "--allow-empty", "-m", message, cwd=clone)
        _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=clone)
        return _git("rev-parse", "HEAD", cwd=clone)

    def head(self, name: str, branch: str = BRANCH) -> str:
        """The sha `branch` points at in the served repository."""
        return _git("--git-dir", str(self.root / f"{name}.git"), "rev-parse", f"refs/heads/{branch}")


def _tls_context(directory: Path, names: list[str]) -> tuple[ssl.SSLContext, Path]:
    cert, key = self_signed(names, days=2)
    ca_file, key_file = directory / "ca.pem", directory / "key.pem"
    ca_file.write_bytes(cert)
    key_file.write_bytes(key)
    key_file.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca_file, key_file)
    return context, ca_file


@contextlib.contextmanager
def run_git_server(
    directory: Path, host: str = "127.0.0.1", port: int = 0, names: tuple[str, ...] = ()
) -> Iterator[GitServer]:
    """Serve bare repositories from `directory`/repos over HTTPS on host:port (port 0: a free one,
    bound here, so no other server can take it in between). The certificate names `host`,
    `localhost`, 127.0.0.1 and `names` (what clients may connect to)."""
    for sub in ("repos", "work", "tls"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    wildcard = host in ("0.0.0.0", "::")  # every address: clients use the machine's own names
    extra = [socket.gethostname()] if wildcard else [host]
    cert_names = list(dict.fromkeys(["127.0.0.1", "localhost", *extra, *names]))
    context, ca_file = _tls_context(directory / "tls", cert_names)
    git = GitServer(root=directory / "repos", work=directory / "work", host=host, ca_file=ca_file)
    server = _HTTPSServer((host, port), context, git)
    git.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="git-server", daemon=True)
    thread.start()
    try:
        yield git
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
