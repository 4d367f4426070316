"""`make up MODE=cluster`: the cluster in a box, left running for a user.

The same local cloud and deployment as the e2e chain (`airtasks_dev.localcloud`): a bridge with
moto and a registry on it, `envs/local` applied with its `stack` set, the manager instance booting
the Swarm and the stack from its user data, and every instance the scaler starts becoming a real
Swarm node. That machinery needs root (network namespaces, iptables, mounts) and the repository
checkout, and has no place in the `airtasks` package or its image.

A background process (`python -m airtasks_dev.localcloud.box serve`) owns the local cloud until
`make down` sends it SIGTERM; its log, state (`box.json`) and the nodes' boot logs live in
`.run/cluster/`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import airtasks
import airtasks_dev
from airtasks.errors import AirtasksError
from airtasks_dev.devstack.moto import client_env
from airtasks_dev.devstack.steps import DevContext

SUBDIR = "cluster"
UP_TIMEOUT = 1500.0  # a fresh machine builds the images first (minutes)


def _import_path() -> str:
    """PYTHONPATH for the background process: where this package and `airtasks` are imported from
    now (pytest's pythonpath, the dev venv's .pth file or an editable install alike)."""
    dirs = [str(Path(pkg.__file__ or "").resolve().parents[1]) for pkg in (airtasks_dev, airtasks)]
    return os.pathsep.join(dict.fromkeys([*dirs, *filter(None, [os.environ.get("PYTHONPATH")])]))


def _read(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ClusterStep:
    """The local cloud and the cluster in a box, owned by a background process."""

    name = "cluster"

    def up(self, ctx: DevContext) -> None:
        if os.geteuid() != 0:
            raise AirtasksError("MODE=cluster needs root (network namespaces, iptables): run it with sudo")
        from airtasks_dev.images import stack_images  # noqa: PLC0415 - needs Docker, only in this mode

        work = ctx.run_dir / SUBDIR
        work.mkdir(parents=True, exist_ok=True)
        ctx.echo("cluster: building the stack's images (cached by content; minutes on a fresh machine) ...")
        images = stack_images()
        log = work / "box.log"
        env = {**os.environ, "PYTHONPATH": _import_path()}
        cmd = [
            sys.executable,
            "-m",
            "airtasks_dev.localcloud.box",
            "serve",
            "--run-dir",
            str(work),
            "--images",
            json.dumps(images),
        ]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd, cwd=ctx.repo, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        (work / "box.pid").write_text(f"{proc.pid}\n")
        state = self._follow(ctx, proc, log, work / "box.json")
        if state.get("status") != "ready":
            raise AirtasksError(
                f"the cluster did not come up: {state.get('error', 'see the log')}; logs: {log}, boot logs "
                f"under {state.get('nodes', work)}. `make down` removes it."
            )
        ctx.env.update(client_env(state["moto"]))  # .run/env: the aws CLI / boto3 on the cluster's moto
        (ctx.run_dir / "local.json").write_text(
            json.dumps(
                {
                    "mode": "cluster",
                    "url": state["url"],
                    "username": state["username"],
                    "password_file": state["password_file"],
                    "ca_bundle": state["ca_bundle"],
                },
                indent=2,
            )
            + "\n"
        )
        ctx.echo(describe(state, ctx.run_dir))

    @staticmethod
    def _follow(
        ctx: DevContext, proc: subprocess.Popen[bytes], log: Path, state_file: Path
    ) -> dict[str, Any]:
        """Echo the background process's progress until the box is ready or failed."""
        deadline = time.monotonic() + UP_TIMEOUT
        offset = 0
        while True:
            text = log.read_text(errors="replace") if log.exists() else ""
            for line in text[offset:].splitlines():
                if line.startswith("cluster: "):
                    ctx.echo(line)
            offset = len(text)
            state = _read(state_file)
            if state.get("status") in ("ready", "failed"):
                return state
            if proc.poll() is not None:
                return {
                    **state,
                    "status": "failed",
                    "error": f"the background process exited {proc.returncode}",
                }
            if time.monotonic() > deadline:
                return {**state, "status": "failed", "error": f"not ready within {UP_TIMEOUT:.0f}s"}
            time.sleep(1)

    def down(self, ctx: DevContext) -> None:
        work = ctx.run_dir / SUBDIR
        pid_file = work / "box.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split()[0])
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 180
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        # Whatever a killed process left (nodes, namespaces, rules) goes too.
        from airtasks_dev.localcloud.network import cleanup_leftovers  # noqa: PLC0415 - root only

        cleanup_leftovers()
        pid_file.unlink()
        ctx.echo("cluster: stopped (nodes, registry, moto, network removed)")


def describe(state: dict[str, Any], run_dir: Path) -> str:
    sock = state.get("manager_docker", "")
    groups = ", ".join(f"{q}: {g}" for q, g in sorted((state.get("groups") or {}).items()))
    return "\n".join(
        [
            "",
            f"Cluster in a box is up (manager {state.get('manager')}, worker groups {groups}).",
            f"  UI          {state['url']}  (user {state['username']}, password in {state['password_file']};",
            f"              self-signed certificate {state['ca_bundle']})",
            "  trigger     .venv/bin/airtasks trigger example_interleaved --wait   (reads .run/local.json)",
            f"  nodes       DOCKER_HOST=unix://{sock} docker node ls   (watch them join and go)",
            f"  boot logs   {state.get('nodes')}/<instance id>/boot.log",
            f"  group       source {run_dir}/env, then aws autoscaling describe-auto-scaling-groups",
            f"  log         {run_dir / SUBDIR / 'box.log'}",
        ]
    )
