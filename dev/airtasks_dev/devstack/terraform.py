"""Terraform on one root module with its working data and state kept in the run directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, NoReturn

from airtasks.errors import AirtasksError

PROVIDER_MIRROR = Path("/opt/tf-plugins")
# At Terraform's own parallelism (10). These runs once went one change at a time, against a create
# sent twice (RouteAlreadyExists, InvalidGroup.Duplicate): the SDK's retry of a call whose answer
# was lost, which moto_serve now answers with the first answer. One at a time cost each apply the
# bucket lifecycle configuration's 55 s consistency check on its own (envs/local: about 115 s,
# against about 62 s now).
APPLY_ARGS = ("-input=false", "-no-color")


class Terraform:
    """`terraform -chdir=<root>` with TF_DATA_DIR and -state under `work_dir`; output logged."""

    def __init__(
        self, root: Path, work_dir: Path, env: dict[str, str], cli_config: Path | None = None
    ) -> None:
        self.root = root
        self.work_dir = work_dir
        self.state = work_dir / "terraform.tfstate"
        self.log = work_dir / "terraform.log"
        self.data_dir = work_dir / "data"
        self.binary = shutil.which("terraform")
        self.env = {**os.environ, **env, "TF_DATA_DIR": str(self.data_dir), "TF_IN_AUTOMATION": "1"}
        self.env.setdefault("CHECKPOINT_DISABLE", "1")
        if cli_config and PROVIDER_MIRROR.is_dir() and cli_config.is_file():
            self.env["TF_CLI_CONFIG_FILE"] = str(cli_config)

    def run(self, *args: str, timeout: float = 900, log_stdout: bool = True) -> str:
        """Run and return stdout (for `-json` output); logged when done."""
        try:
            proc = self._run(args, timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except subprocess.TimeoutExpired:
            self._fail(args, "", timeout)
        with self.log.open("a") as log:
            out = proc.stdout if log_stdout or proc.returncode else "(stdout not logged)\n"
            log.write(f"$ terraform {' '.join(args)}\n{out}{proc.stderr}\n")
        if proc.returncode != 0:
            self._fail(args, proc.stdout + proc.stderr)
        return str(proc.stdout)

    def stream(self, *args: str, timeout: float = 900) -> None:
        """Run with the output going to the log as it comes: a slow apply or destroy shows there
        which resource it waits for ("Still destroying... [2m0s elapsed]")."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            log.write(f"$ terraform {' '.join(args)}\n")
            log.flush()
            start = log.tell()
            try:
                failed = self._run(args, timeout, stdout=log, stderr=subprocess.STDOUT).returncode != 0
                stopped = None
            except subprocess.TimeoutExpired:
                failed, stopped = True, timeout
        if failed:
            with self.log.open() as log:
                log.seek(start)
                self._fail(args, log.read(), stopped)

    def _run(self, args: tuple[str, ...], timeout: float, **how: Any) -> subprocess.CompletedProcess[Any]:
        if not self.binary:
            raise AirtasksError("terraform is not on PATH; install Terraform >= 1.11")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, f"-chdir={self.root}", *args]
        # Its own process group, so that a stopped terraform takes its provider plugins with it.
        with subprocess.Popen(cmd, env=self.env, start_new_session=True, **how) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except BaseException:  # the timeout, or Ctrl-C (which reaches only our group)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def _fail(self, args: tuple[str, ...], output: str, stopped_after: float | None = None) -> NoReturn:
        what = (
            "failed"
            if stopped_after is None
            else f"did not finish within {stopped_after:.0f}s and was stopped"
        )
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise AirtasksError(f"terraform {args[0]} in {self.root} {what} (full log: {self.log}):\n{tail}")

    def init(self) -> None:
        self.stream("init", "-input=false", "-no-color")

    def apply(self, variables: dict[str, Any] | None = None, timeout: float = 900) -> None:
        args = ("apply", "-auto-approve", *APPLY_ARGS, f"-state={self.state}", *_vars(variables))
        self.stream(*args, timeout=timeout)

    def plan(self, variables: dict[str, Any] | None = None) -> Path:
        """`terraform plan -out`: the saved plan `apply_plan` applies, without planning again."""
        out = self.work_dir / "up.tfplan"
        args = ["-input=false", "-no-color", f"-state={self.state}", f"-out={out}"]
        self.stream("plan", *args, *_vars(variables))
        return out

    def planned_outputs(self, plan: Path) -> dict[str, Any]:
        """The outputs a saved plan already knows (values computed only at apply are left out)."""
        shown = json.loads(self.run("show", "-json", str(plan), log_stdout=False))
        planned = shown.get("planned_values", {}).get("outputs", {})
        return {name: item["value"] for name, item in planned.items() if "value" in item}

    def apply_plan(self, plan: Path) -> None:
        self.stream("apply", *APPLY_ARGS, f"-state={self.state}", str(plan))

    def destroy(self, variables: dict[str, Any] | None = None, timeout: float = 900) -> None:
        args = ("destroy", "-auto-approve", *APPLY_ARGS, f"-state={self.state}", *_vars(variables))
        self.stream(*args, timeout=timeout)

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json", f"-state={self.state}"))
        return {name: item.get("value") for name, item in raw.items()}


def _vars(variables: dict[str, Any] | None) -> list[str]:
    return [
        f"-var={k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in (variables or {}).items()
    ]
