"""Runs inside the Air-Tasks image (tests/integration/test_git_bundle.py): Airflow's own DAG bundle
code, driven one JSON command per stdin line, one JSON answer per stdout line (prefixed, so that
Airflow's log lines on the same stream are told apart).

The bundles come from `[dag_processor] dag_bundle_config_list` and their connections from the
environment, exactly as the stack hands them to every Airflow service: DagBundlesManager builds
them the way the dag-processor and a worker do.

  {"op": "open", "key": "k", "name": "team", "version": null}  -> get_bundle + initialize()
  {"op": "refresh", "key": "k"}                                 -> refresh() (a dag-processor's)
  {"op": "state", "key": "k"}

An answer is the bundle's state (`version`: get_current_version(), `files`: what the bundle's path
holds, `outputs`: what each task of its parsed DAGs returns, `errors`: the DAGs' import errors) or,
when the call raised, `error` with the exception, its cause and git's stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import DagBag

PREFIX = "PROBE "


def _state(bundle: Any) -> dict[str, Any]:
    current = bundle.get_current_version()
    version = getattr(current, "version", current)  # BundleVersion on Airflow >= 3.3, else a str
    root = Path(bundle.path)
    files = {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
    # Parsed as the dag-processor parses a bundle, and each task called as a worker would run it:
    # what a user sees of a commit is its DAGs and what their tasks print.
    dagbag = DagBag(dag_folder=root, bundle_path=root, bundle_name=bundle.name)
    outputs = {
        f"{dag_id}.{t.task_id}": t.python_callable()
        for dag_id, dag in sorted(dagbag.dags.items())
        for t in dag.tasks
        if getattr(t, "python_callable", None)
    }
    errors = {str(k): str(v) for k, v in dagbag.import_errors.items()}
    return {"version": version, "path": str(root), "files": files, "outputs": outputs, "errors": errors}


def _error(exc: BaseException) -> dict[str, Any]:
    cause = exc.__cause__ or exc.__context__
    return {
        "error": f"{type(exc).__module__}.{type(exc).__name__}",
        "message": str(exc),
        "cause": repr(cause) if cause else None,
        # GitPython's GitCommandError carries git's own stderr: what a user reads in the log.
        "stderr": str(getattr(cause, "stderr", "") or getattr(exc, "stderr", "") or ""),
    }


def main() -> None:
    manager = DagBundlesManager()  # type: ignore[no-untyped-call]
    bundles: dict[str, Any] = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "open":
                bundle = manager.get_bundle(command["name"], version=command.get("version"))
                bundle.initialize()
                bundles[command["key"]] = bundle
            elif command["op"] == "refresh":
                bundles[command["key"]].refresh()
            answer = _state(bundles[command["key"]])
        except Exception as exc:
            answer = _error(exc)
        print(PREFIX + json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
