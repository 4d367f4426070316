"""The spot watcher the boot script installs on spot workers (modules/swarm-boot/templates/
spot_watcher.py), against real HTTP stand-ins on 127.0.0.1 for EC2's IMDSv2 and GCE's metadata
server: 404 until the notice, token expiry, a server that is down and comes up, bad answers. The
watcher must back off and never raise; on the notice it cancels the node's Celery consumer and
records the deadline in the engine labels, each step retried."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airtasks.scaling.read import notice_queue_deadlines

WATCHER_PATH = Path(__file__).parents[2] / "modules" / "swarm-boot" / "templates" / "spot_watcher.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spot_watcher", WATCHER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sw = _load()


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass
class Stub:
    """What the stand-in serves, and what it saw."""

    cloud: str
    notice_after: int = 0
    """AWS: 404 for this many instance-action GETs, then the notice. GCP: FALSE until a wait."""
    deadline: float = 0.0
    rebalance_for: int = 0
    token_uses: int = 0
    """AWS: a token stops working after this many GETs (0: never)."""
    bad_first: bool = False
    """The first instance-action answer is 200 with garbage."""
    tokens: dict[str, int] = field(default_factory=dict)
    token_puts: int = 0
    action_gets: int = 0
    rebalance_gets: int = 0
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: str = "", etag: str = "") -> None:
            data = body.encode()
            self.send_response(code)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if stub.cloud != "aws" or self.path != "/latest/api/token":
                return self._send(404)
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._send(400)
            with stub.lock:
                stub.token_puts += 1
                token = f"token-{stub.token_puts}"
                stub.tokens[token] = 0
            return self._send(200, token)

        def do_GET(self) -> None:
            if stub.cloud == "aws":
                return self._aws()
            return self._gcp()

        def _aws(self) -> None:
            token = self.headers.get("X-aws-ec2-metadata-token", "")
            with stub.lock:
                uses = stub.tokens.get(token)
                if uses is None or (stub.token_uses and uses >= stub.token_uses):
                    return self._send(401)
                stub.tokens[token] = uses + 1
                if self.path == "/latest/meta-data/spot/instance-action":
                    stub.action_gets += 1
                    if stub.bad_first and stub.action_gets == 1:
                        return self._send(200, "<html>not json</html>")
                    if stub.action_gets > stub.notice_after:
                        return self._send(
                            200, json.dumps({"action": "terminate", "time": _iso(stub.deadline)})
                        )
                    return self._send(404)
                if self.path == "/latest/meta-data/events/recommendations/rebalance":
                    stub.rebalance_gets += 1
                    if stub.rebalance_gets <= stub.rebalance_for:
                        return self._send(200, json.dumps({"noticeTime": _iso(time.time())}))
                    return self._send(404)
            return self._send(404)

        def _gcp(self) -> None:
            if self.headers.get("Metadata-Flavor") != "Google":
                return self._send(403)
            url = urlsplit(self.path)
            if url.path != "/computeMetadata/v1/instance/preempted":
                return self._send(404)
            query = parse_qs(url.query)
            with stub.lock:
                stub.queries.append(query)
            if query.get("wait_for_change") == ["true"] and query.get("last_etag") == ["etag-1"]:
                time.sleep(0.2)  # the server holds the request until the value changes
                return self._send(200, "TRUE", etag="etag-2")
            return self._send(200, "FALSE", etag="etag-1")

    return Handler


@contextmanager
def serve(stub: Stub, port: int = 0) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(stub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        yield base if stub.cloud == "aws" else base + "/computeMetadata/v1"
    finally:
        server.shutdown()
        server.server_close()


def _source(cloud: str, base: str) -> Any:
    return sw.Aws(base) if cloud == "aws" else sw.Gcp(base, wait_seconds=5)


class Sleeps:
    """Records the pauses the watcher asks for without waiting them out."""

    def __init__(self, real: float = 0.0) -> None:
        self.asked: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(self.real)


def test_aws_404_until_the_notice_then_its_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    deadline = time.time() + 120
    stub = Stub("aws", notice_after=3, deadline=deadline, rebalance_for=2)
    sleeps = Sleeps()
    with serve(stub) as base:
        notice = sw.watch(sw.Aws(base), sleep=sleeps)
    assert notice is not None
    assert (notice.kind, notice.action, notice.source) == ("spot", "terminate", "aws")
    assert notice.deadline == pytest.approx(int(deadline), abs=1)
    assert stub.action_gets == 4
    assert stub.rebalance_gets == 3
    assert sleeps.asked == [5.0, 5.0, 5.0], "AWS's advice: poll every 5 s"
    assert stub.token_puts == 1, "one session token serves every poll"
    out = capsys.readouterr().out
    assert out.count("airtasks-boot: spot rebalance recommendation") == 1


def test_aws_token_expired_by_the_server_is_replaced_on_401() -> None:
    stub = Stub("aws", notice_after=5, deadline=time.time() + 120, token_uses=3)
    with serve(stub) as base:
        notice = sw.watch(sw.Aws(base), sleep=Sleeps())
    assert notice is not None
    assert stub.token_puts >= 3, "a 401 gets a new token, not a failure"


def test_aws_token_renewed_before_its_ttl_runs_out() -> None:
    now = [1000.0]
    stub = Stub("aws", notice_after=10**6)
    with serve(stub) as base:
        source = sw.Aws(base, ttl=100, clock=lambda: now[0])
        assert source.poll() is None
        now[0] += 50
        assert source.poll() is None
        assert stub.token_puts == 1
        now[0] += 45  # past 90 % of the TTL
        assert source.poll() is None
    assert stub.token_puts == 2


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_server_down_then_up_backs_off_and_never_raises(
    cloud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nothing listens on, until the server starts there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}" + ("/computeMetadata/v1" if cloud == "gcp" else "")
    sleeps = Sleeps(real=0.01)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(sw.watch(_source(cloud, base), sleep=sleeps)))
    thread.start()
    while len(sleeps.asked) < 5:
        time.sleep(0.01)
    stub = Stub(cloud, notice_after=0, deadline=time.time() + 120)
    with serve(stub, port=port):
        thread.join(timeout=20)
    assert not thread.is_alive()
    (notice,) = result
    assert notice is not None
    assert notice.kind == "spot"
    backoff = sleeps.asked[:5]
    assert backoff == sorted(backoff)
    assert backoff[-1] <= sw.MAX_BACKOFF
    assert backoff[0] < backoff[-1]
    assert "next try in" in capsys.readouterr().out


def test_garbage_answer_is_retried_not_fatal() -> None:
    stub = Stub("aws", notice_after=0, deadline=time.time() + 120, bad_first=True)
    with serve(stub) as base:
        notice = sw.watch(sw.Aws(base), sleep=Sleeps())
    assert notice is not None
    assert stub.action_gets == 2


def test_gcp_waits_on_the_etag_for_preempted() -> None:
    stub = Stub("gcp")
    before = time.time()
    with serve(stub) as base:
        notice = sw.watch(sw.Gcp(base, wait_seconds=5), sleep=Sleeps())
    assert notice is not None
    assert (notice.action, notice.source) == ("preempted", "gcp")
    assert before + 30 <= notice.deadline <= time.time() + 30
    first, second = stub.queries
    assert first == {}, "the current value first: a notice already there is not waited for"
    assert second["wait_for_change"] == ["true"]
    assert second["last_etag"] == ["etag-1"]


def test_gcp_stand_in_refuses_requests_without_the_flavor_header() -> None:
    """As GCE's does: so the tests above show that the watcher sends it."""
    with serve(Stub("gcp")) as base:
        assert sw._http("GET", base + "/instance/preempted", {}, 2.0)[0] == 403


def test_stop_ends_the_watch_without_a_notice() -> None:
    stub = Stub("aws", notice_after=10**6)
    with serve(stub) as base:
        assert sw.watch(sw.Aws(base), sleep=Sleeps(), stop=lambda: stub.action_gets >= 2) is None


# ---------------------------------------------------------------- acting on the notice

FAKE_DOCKER = """#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$(dirname "$0")/calls"
case "$1" in
ps) printf 'aaa111 airtasks_worker-heavy\\nbbb222 airtasks_worker-default\\nccc333 airtasks_scheduler\\n' ;;
exec)
  n=$(cat "$(dirname "$0")/fail" 2>/dev/null || echo 0)
  if ((n > 0)); then echo $((n - 1)) >"$(dirname "$0")/fail"; echo "broker unreachable" >&2; exit 1; fi
  echo "-> celery@i-0abc: OK" ;;
esac
"""

HUP_CATCHER = """
import pathlib, signal, sys, time
signal.signal(signal.SIGHUP, lambda *_: pathlib.Path(sys.argv[1]).write_text("reloaded"))
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(60)
"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    daemon = tmp_path / "daemon.json"
    daemon.write_text(
        json.dumps({"labels": ["airtasks.queue=default", "airtasks.role=worker"], "debug": True})
    )
    flag = tmp_path / "hup"
    dockerd = subprocess.Popen([sys.executable, "-c", HUP_CATCHER, str(flag)])
    try:
        while not flag.exists():
            time.sleep(0.01)
        (tmp_path / "docker.pid").write_text(f"{dockerd.pid}\n")
        yield (
            sw.Node("i-0abc", "default", str(docker), str(daemon), str(tmp_path / "docker.pid")),
            tmp_path,
        )
    finally:
        dockerd.send_signal(signal.SIGTERM)
        dockerd.wait(timeout=10)


def _wait_for(path: Path, text: str) -> None:
    end = time.monotonic() + 5
    while path.read_text() != text and time.monotonic() < end:
        time.sleep(0.01)


def test_notice_cancels_the_consumer_and_labels_the_engine(
    node: tuple[Any, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    worker, tmp = node
    deadline = time.time() + 118
    assert sw.act(sw.Notice("spot", "terminate", deadline, "aws"), worker, sleep=Sleeps())
    calls = (tmp / "calls").read_text()
    # In the queue's worker container (bbb222), for this queue, instance and deadline.
    assert calls.count("exec bbb222 python -c ") == 1
    assert f"default i-0abc {int(deadline)}\n" in calls
    cfg = json.loads((tmp / "daemon.json").read_text())
    assert cfg["labels"] == [
        "airtasks.queue=default",
        "airtasks.role=worker",
        f"airtasks.interrupted={int(deadline)}",
    ]
    assert cfg["debug"] is True
    _wait_for(tmp / "hup", "reloaded")
    assert (tmp / "hup").read_text() == "reloaded", "dockerd reloads its labels on SIGHUP"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("airtasks-boot: spot notice: aws terminate at ")
    assert "(118s left) on i-0abc" in lines[0] or "(117s left) on i-0abc" in lines[0]

    # Again (the unit restarted): the same state, one label.
    assert sw.act(sw.Notice("spot", "terminate", deadline, "aws"), worker, sleep=Sleeps())
    assert json.loads((tmp / "daemon.json").read_text()) == cfg


def test_failed_step_is_retried_with_back_off(node: tuple[Any, Path]) -> None:
    worker, tmp = node
    (tmp / "fail").write_text("2")
    sleeps = Sleeps()
    assert sw.act(sw.Notice("spot", "terminate", time.time() + 120, "aws"), worker, sleep=sleeps)
    assert sleeps.asked == [1.0, 2.0]
    assert (tmp / "calls").read_text().count("exec bbb222 python -c ") == 3


def test_gives_up_at_the_deadline_without_raising(
    node: tuple[Any, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    worker, tmp = node
    (tmp / "fail").write_text("1000")
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert not sw.act(sw.Notice("spot", "preempted", 130.0, "gcp"), worker, clock=lambda: now[0], sleep=sleep)
    assert "gave up at the deadline: docker exec: broker unreachable" in capsys.readouterr().out


def test_no_worker_container_is_not_an_error(node: tuple[Any, Path]) -> None:
    worker, _ = node
    other = sw.Node("i-0abc", "io", worker.docker, worker.daemon_json, worker.docker_pidfile)
    assert other.stop_intake(time.time() + 120) == "no worker of queue io runs here: nothing to cancel"


FAKE_CELERY_APP = """
import json, os
class _Channel:
    def queue_declare(self, **kw):
        with open(os.environ["DECLARED"], "w") as fh:
            json.dump(kw, fh)
class _Conn:
    default_channel = _Channel()
    def __enter__(self): return self
    def __exit__(self, *a): return False
class _Control:
    def cancel_consumer(self, queue, destination, reply, timeout):
        with open(os.environ["CANCELLED"], "w") as fh:
            json.dump([queue, destination], fh)
        return [] if os.environ.get("SILENT") else [{destination[0]: {"ok": "no longer consuming"}}]
class _App:
    control = _Control()
    def connection_for_write(self): return _Conn()
app = _App()
"""


@pytest.mark.parametrize("silent", [False, True])
def test_the_intake_script_cancels_then_puts_the_notice_on_the_broker(tmp_path: Path, silent: bool) -> None:
    """The script the watcher runs in the worker container, against a stand-in for Airflow's
    Celery app (the box test runs it against the real one)."""
    pkg = tmp_path / "airflow" / "providers" / "celery" / "executors"
    pkg.mkdir(parents=True)
    (pkg / "celery_executor.py").write_text(FAKE_CELERY_APP)
    for level in (pkg, *pkg.parents):
        if level == tmp_path:
            break
        (level / "__init__.py").touch()
    env = {
        "PYTHONPATH": str(tmp_path),
        "CANCELLED": str(tmp_path / "cancelled"),
        "DECLARED": str(tmp_path / "declared"),
        **({"SILENT": "1"} if silent else {}),
    }
    # -S: no site-packages, so the stand-in is the only `airflow` the script can import.
    args = [sys.executable, "-S", "-c", sw.INTAKE_SCRIPT, "default", "i-0abc", "1700000120"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert json.loads((tmp_path / "cancelled").read_text()) == ["default", ["celery@i-0abc"]]
    if silent:
        assert out.returncode != 0
        assert "celery@i-0abc did not answer the cancel" in out.stderr
        assert not (tmp_path / "declared").exists()
        return
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "consumer of default cancelled on celery@i-0abc; notice on the broker"
    declared = json.loads((tmp_path / "declared").read_text())
    assert declared["queue"] == "airtasks.interrupted.i-0abc.1700000120"
    assert declared["arguments"] == {"x-expires": 900000}
    assert declared["auto_delete"] is False
    # What the scaler parses back.
    assert notice_queue_deadlines([declared["queue"]]) == {"i-0abc": 1700000120.0}
