#!/usr/bin/env python3
"""Air-Tasks spot watcher: act on the cloud's interruption notice (installed by airtasks-boot)."""

# The boot script embeds this file on spot workers only and runs it as airtasks-spot-watcher.service.
# Standard library only and Python 3.8+: nodes have the distribution's python3, nothing else.
# Whole-line comments are dropped from the boot script (EC2 takes 16 KiB of user data).
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime

NOTICE_SECONDS = {"aws": 120.0, "gcp": 30.0}
LABEL = "airtasks.interrupted"
# Run in the node's worker container, which has the broker's address and credentials: cancel the
# consumer (what the scaler's cordon does), then declare the empty queue
# airtasks.interrupted.<instance>.<deadline>, which the scaler sees in its next listing of the
# broker's queues (the engine label takes up to 20 s more). It expires 15 min after last use.
INTAKE_SCRIPT = """
import sys
from airflow.providers.celery.executors.celery_executor import app
queue, instance, deadline = sys.argv[1:4]
if not app.control.cancel_consumer(queue, destination=["celery@" + instance], reply=True, timeout=10):
    sys.exit("celery@" + instance + " did not answer the cancel")
with app.connection_for_write() as conn:
    conn.default_channel.queue_declare(
        queue="airtasks.interrupted.%s.%s" % (instance, deadline), durable=False, auto_delete=False,
        arguments={"x-expires": 900000})
print("consumer of %s cancelled on celery@%s; notice on the broker" % (queue, instance))
"""
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_BACKOFF = 20.0

# Metadata servers are link-local: never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(msg: str) -> None:
    print("airtasks-boot: " + msg, flush=True)


class Unavailable(Exception):
    """The metadata server gave no usable answer: try again after a back-off."""


class Notice:
    def __init__(self, kind: str, action: str, deadline: float, source: str) -> None:
        self.kind = kind
        self.action = action
        self.deadline = deadline
        self.source = source


def _http(method: str, url: str, headers: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """(status, body, ETag) of one request; Unavailable when nothing answered."""
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(), resp.headers.get("ETag", "")
    except urllib.error.HTTPError as exc:
        return exc.code, "", ""
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Unavailable(f"{url}: {exc}") from None


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Aws:
    """IMDSv2: a session token (PUT), renewed before its TTL runs out and on a 401."""

    pause = 5.0

    def __init__(self, endpoint: str, ttl: int = 21600, clock: Callable[[], float] = time.time) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.ttl = ttl
        self.clock = clock
        self.token = ""
        self.renew_at = 0.0

    def _token(self) -> str:
        if not self.token or self.clock() >= self.renew_at:
            code, body, _ = _http(
                "PUT",
                self.endpoint + "/latest/api/token",
                {"X-aws-ec2-metadata-token-ttl-seconds": str(self.ttl)},
                2.0,
            )
            if code != 200 or not body.strip():
                raise Unavailable(f"IMDSv2 token: HTTP {code}")
            self.token = body.strip()
            self.renew_at = self.clock() + self.ttl * 0.9
        return self.token

    def _get(self, path: str) -> str | None:
        for attempt in (1, 2):
            code, body, _ = _http(
                "GET", f"{self.endpoint}/latest/meta-data/{path}", {TOKEN_HEADER: self._token()}, 2.0
            )
            if code == 401 and attempt == 1:
                self.token = ""
                continue
            if code == 404:
                return None
            if code == 200:
                return body
            raise Unavailable(f"{path}: HTTP {code}")
        raise Unavailable(f"{path}: HTTP 401 with a new token")

    def poll(self) -> Notice | None:
        body = self._get("spot/instance-action")
        if body:
            doc = json.loads(body)
            return Notice("spot", str(doc.get("action", "terminate")), _epoch(doc["time"]), "aws")
        body = self._get("events/recommendations/rebalance")
        if body:
            return Notice("rebalance", "rebalance", _epoch(json.loads(body)["noticeTime"]), "aws")
        return None


class Gcp:
    """GCE metadata: read instance/preempted once, then wait on its ETag (no polling)."""

    pause = 1.0

    def __init__(self, endpoint: str, wait_seconds: int = 60, clock: Callable[[], float] = time.time) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.etag = ""

    def poll(self) -> Notice | None:
        url = self.endpoint + "/instance/preempted"
        timeout = 5.0
        if self.etag:
            url += f"?wait_for_change=true&last_etag={self.etag}&timeout_sec={self.wait_seconds}"
            timeout += self.wait_seconds
        code, body, etag = _http("GET", url, {"Metadata-Flavor": "Google"}, timeout)
        if code != 200:
            self.etag = ""
            raise Unavailable(f"instance/preempted: HTTP {code}")
        self.etag = etag
        if body.strip().upper() == "TRUE":
            return Notice("spot", "preempted", self.clock() + NOTICE_SECONDS["gcp"], "gcp")
        return None


def watch(
    source: Aws | Gcp,
    sleep: Callable[[float], None] = time.sleep,
    max_backoff: float = MAX_BACKOFF,
    stop: Callable[[], bool] = lambda: False,
) -> Notice | None:
    """Poll until an interruption notice; None only when `stop` says so. Never raises."""
    delay = source.pause
    rebalance_seen = False
    while not stop():
        try:
            notice = source.poll()
        except Exception as exc:
            log(f"spot watcher: {exc}; next try in {delay:g}s")
            sleep(delay)
            delay = min(max(delay, 0.5) * 2, max_backoff)
            continue
        delay = source.pause
        if notice is not None and notice.kind == "spot":
            return notice
        if notice is not None and not rebalance_seen:
            rebalance_seen = True
            log("spot rebalance recommendation: the group launches a replacement; still taking tasks")
        sleep(source.pause)
    return None


class Node:
    """What the watcher does to its own node. Every step is idempotent."""

    def __init__(
        self,
        instance: str,
        queue: str,
        docker: str = "docker",
        daemon_json: str = "/etc/docker/daemon.json",
        docker_pidfile: str = "/var/run/docker.pid",
    ) -> None:
        self.instance = instance
        self.queue = queue
        self.docker = docker
        self.daemon_json = daemon_json
        self.docker_pidfile = docker_pidfile

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        proc = subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"docker {args[0]}: {(proc.stderr or proc.stdout).strip()[:200]}")
        return proc.stdout

    def stop_intake(self, deadline: float) -> str:
        """Cancel the Celery consumer of this node's worker (running tasks go on, no new one
        starts) and tell the scaler through the broker."""
        fmt = '{{.ID}} {{.Label "com.docker.swarm.service.name"}}'
        for line in self._run("ps", "--format", fmt).splitlines():
            cid, _, service = line.partition(" ")
            if service.endswith("_worker-" + self.queue) or service == "worker-" + self.queue:
                script = ("python", "-c", INTAKE_SCRIPT, self.queue, self.instance, str(int(deadline)))
                return self._run("exec", cid, *script).strip().splitlines()[-1]
        return f"no worker of queue {self.queue} runs here: nothing to cancel"

    def record(self, deadline: float) -> str:
        """airtasks.interrupted=<deadline> in the engine labels: the manager sees engine labels."""
        try:
            with open(self.daemon_json) as fh:
                cfg = json.load(fh)
        except FileNotFoundError:
            cfg = {}
        item = f"{LABEL}={int(deadline)}"
        labels = [x for x in cfg.get("labels", []) if not x.startswith(LABEL + "=")]
        if item not in cfg.get("labels", []):
            cfg["labels"] = [*labels, item]
            tmp = self.daemon_json + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(cfg, fh, indent=2)
                fh.write("\n")
            os.replace(tmp, self.daemon_json)
        # dockerd reloads its labels on SIGHUP, without a restart (which would stop the worker).
        with open(self.docker_pidfile) as fh:
            os.kill(int(fh.read().strip()), signal.SIGHUP)
        return f"engine label {item}"


def act(
    notice: Notice,
    node: Node,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Stop intake and record the notice, each retried with a back-off until done or the deadline."""
    left = notice.deadline - clock()
    when = time.strftime("%H:%M:%SZ", time.gmtime(notice.deadline))
    log(f"spot notice: {notice.source} {notice.action} at {when} ({left:.0f}s left) on {node.instance}")
    steps: list[Callable[[], str]] = [
        lambda: node.stop_intake(notice.deadline),
        lambda: node.record(notice.deadline),
    ]
    delay = 1.0
    while steps:
        try:
            log(f"spot notice: {steps[0]()}")
            steps.pop(0)
            continue
        except Exception as exc:
            if clock() >= notice.deadline:
                log(f"spot notice: gave up at the deadline: {exc}")
                return False
            log(f"spot notice: {exc}; retrying in {delay:g}s")
        sleep(delay)
        delay = min(delay * 2, 10.0)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cloud", choices=sorted(NOTICE_SECONDS), required=True)
    p.add_argument("--endpoint", required=True, help="IMDS base URL, or the GCE computeMetadata/v1 URL")
    p.add_argument("--instance", required=True)
    p.add_argument("--queue", required=True)
    a = p.parse_args(argv)
    source: Aws | Gcp = Aws(a.endpoint) if a.cloud == "aws" else Gcp(a.endpoint)
    log(f"spot watcher: watching {a.endpoint} for an interruption notice")
    notice = watch(source)
    if notice is not None:
        act(notice, Node(a.instance, a.queue))
    while True:  # done: stay up, so that systemd does not start it (and act) again
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
