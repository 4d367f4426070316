"""An EC2 instance-metadata (IMDSv2) stand-in, run inside a node's network namespace.

Started by `node.Node` as `python imds.py CONFIG.json` in the node's namespace, where
169.254.169.254/32 sits on lo; it must never be started or contacted on the host itself. Standard
library only, so any python3 runs it.

Config (JSON): {"address", "port", "http_tokens": "required"|"optional", "tree": {path: value},
"user_data_b64"} where the tree maps paths below /latest/ (e.g. "meta-data/instance-id",
"dynamic/instance-identity/document") to strings, and /latest/user-data serves the user data's
bytes as the instance got them (still gzipped if they were). A GET of a directory lists its
children like IMDS does ("placement/" for subdirectories). Tokens: PUT /latest/api/token with
X-aws-ec2-metadata-token-ttl-seconds (1..21600) returns one; every GET must carry it in
X-aws-ec2-metadata-token when http_tokens is "required" (else 401). A token PUT from an address
that is not the node's own (a container on the node, one hop further) gets no answer when
"hop_limit" is 1, as on EC2. The access log has no tokens. The tree is read again when the
config file changes (an instance profile associated after launch shows up, as on EC2).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600


class Metadata:
    def __init__(
        self,
        tree: dict[str, str],
        user_data: bytes | None,
        http_tokens: str,
        hop_limit: int = 1,
        local_addresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> None:
        self.tree = {k.strip("/"): v for k, v in tree.items()}
        self.user_data = user_data
        self.http_tokens = http_tokens
        self.hop_limit = hop_limit
        self.local_addresses = local_addresses
        self.tokens: dict[str, float] = {}
        self.lock = threading.Lock()
        self.config_path: str | None = None
        self.config_mtime = 0.0

    def refresh(self) -> None:
        """Take the tree from the config file again if it changed since it was read."""
        if self.config_path is None:
            return
        try:
            mtime = os.stat(self.config_path).st_mtime
            if mtime == self.config_mtime:
                return
            with open(self.config_path) as fh:
                config = json.load(fh)
        except (OSError, ValueError):
            return
        with self.lock:
            self.tree = {k.strip("/"): v for k, v in config["tree"].items()}
            self.config_mtime = mtime

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.monotonic() + ttl
        return token

    def valid(self, token: str | None) -> bool:
        if token is None:
            return self.http_tokens != "required"
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def lookup(self, path: str) -> str | None:
        key = path.strip("/")
        if key in self.tree:
            return self.tree[key]
        prefix = f"{key}/" if key else ""
        children: list[str] = []
        for k in self.tree:
            if k.startswith(prefix):
                rest = k[len(prefix) :]
                child = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
                if child not in children:
                    children.append(child)
        return "\n".join(children) if children else None


def handler_for(meta: Metadata) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"
        sys_version = ""

        def _send(self, status: int, body: str | bytes, extra: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if self.path.rstrip("/") != "/latest/api/token":
                self._send(404, "Not Found")
                return
            hops = 1 if self.client_address[0] in meta.local_addresses else 2
            if hops > meta.hop_limit:  # on EC2 the answer's TTL runs out before it gets there
                sys.stderr.write(
                    f"imds: PUT /latest/api/token from {self.client_address[0]}: beyond hop limit\n"
                )
                self.close_connection = True
                return
            try:
                ttl = int(self.headers.get(TTL_HEADER, ""))
            except ValueError:
                self._send(400, "Bad Request")
                return
            if not 1 <= ttl <= MAX_TTL:
                self._send(400, "Bad Request")
                return
            self._send(200, meta.issue(ttl), {TTL_HEADER: str(ttl)})

        def do_GET(self) -> None:
            meta.refresh()
            if not meta.valid(self.headers.get(TOKEN_HEADER)):
                self._send(401, "Unauthorized")
                return
            path = self.path.split("?", 1)[0]
            if not path.startswith("/latest/"):
                self._send(404, "Not Found")
                return
            rel = path[len("/latest/") :].strip("/")
            if rel == "user-data":
                if meta.user_data is None:
                    self._send(404, "Not Found")
                else:
                    self._send(200, meta.user_data)
                return
            value = meta.lookup(rel)
            if rel == "" and meta.user_data is not None:
                value = f"{value}\nuser-data" if value else "user-data"
            if value is None:
                self._send(404, "Not Found")
            else:
                self._send(200, value)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(
                f"imds: {self.command} {self.path.split('?', 1)[0]} {args[1] if len(args) > 1 else ''}\n"
            )
            sys.stderr.flush()

    return Handler


def main(config_path: str) -> None:
    with open(config_path) as fh:
        config = json.load(fh)
    user_data = config.get("user_data_b64")
    meta = Metadata(
        config["tree"],
        base64.b64decode(user_data) if user_data else None,
        config.get("http_tokens", "required"),
        int(config.get("hop_limit", 1)),
        tuple(config.get("local_addresses", ["127.0.0.1"])),
    )
    meta.config_path = config_path
    meta.config_mtime = os.stat(config_path).st_mtime
    server = ThreadingHTTPServer(
        (config.get("address", "169.254.169.254"), int(config.get("port", 80))), handler_for(meta)
    )
    server.daemon_threads = True
    host, port = server.server_address[:2]
    sys.stderr.write(f"imds: serving on {host!s}:{port}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
