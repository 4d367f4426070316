"""Your DAG bundles in the stack: Airflow's `[dag_processor] dag_bundle_config_list`.

`airtasks stack render --dag-bundles JSON` takes the list the cluster modules render from their
`dag_bundles` input (docs/dag-bundles.md): each entry has a `name` and either `git` (`url`, `ref`,
`subdir`, `refresh_seconds`, `credential`) or `bucket` (`url`: s3://BUCKET/PREFIX/ or
gs://BUCKET/PREFIX/, `region` for S3, `refresh_seconds`). The image's own DAG folder stays the
first bundle (`dags-folder`: the examples and the scaler DAG), so a cluster works without any.
Terraform validates the input for its user; the checks here stop a hand-written list that
Airflow would only reject at run time, in a dag-processor log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airtasks.errors import AirtasksError

IMAGE_BUNDLE = "dags-folder"  # Airflow's own name for the bundle of [core] dags_folder
LOCAL_CLASSPATH = "airflow.dag_processing.bundles.local.LocalDagBundle"
GIT_CLASSPATH = "airflow.providers.git.bundles.git.GitDagBundle"
BUCKET_CLASSPATHS = {
    "s3": "airflow.providers.amazon.aws.bundles.s3.S3DagBundle",
    "gs": "airflow.providers.google.cloud.bundles.gcs.GCSDagBundle",
}
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# No user or token in an https URL: it would be in Terraform's state and the stack file.
GIT_URL_RE = re.compile(r"^(https://[A-Za-z0-9.-]+(:[0-9]+)?/\S+|ssh://[^\s/]+/\S+|git@[A-Za-z0-9.-]+:\S+)$")
BUCKET_URL_RE = re.compile(r"^(s3|gs)://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/((?:[a-z0-9][a-z0-9._-]*/)+)$")
REFRESH_RANGE = (10, 86400)
CONFIG_LIST_ENV = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


class BundleError(AirtasksError):
    """A DAG bundle in `--dag-bundles` is wrong."""


@dataclass(frozen=True)
class DagBundle:
    """One bundle: `source` is `git` or the bucket's scheme (`s3`, `gs`)."""

    name: str
    source: str
    url: str
    refresh_seconds: int
    ref: str = "main"
    subdir: str | None = None
    credential: str | None = None
    region: str | None = None

    @property
    def conn_id(self) -> str:
        """The keyless connection the bundle reads with (one per bundle; never a secret in it)."""
        return f"airtasks_dags_{self.name.replace('-', '_')}"

    def config(self) -> dict[str, Any]:
        """This bundle's entry of `dag_bundle_config_list`."""
        kwargs: dict[str, Any] = {"refresh_interval": self.refresh_seconds}
        if self.source == "git":
            kwargs |= {"repo_url": self.url, "tracking_ref": self.ref, "git_conn_id": self.conn_id}
            if self.subdir:
                kwargs["subdir"] = self.subdir
            return {"name": self.name, "classpath": GIT_CLASSPATH, "kwargs": kwargs}
        match = BUCKET_URL_RE.fullmatch(self.url)
        assert match is not None  # parse() checked it
        conn_kwarg = "aws_conn_id" if self.source == "s3" else "gcp_conn_id"
        kwargs |= {"bucket_name": match.group(2), "prefix": match.group(3), conn_kwarg: self.conn_id}
        return {"name": self.name, "classpath": BUCKET_CLASSPATHS[self.source], "kwargs": kwargs}

    def connection(self) -> dict[str, Any]:
        """The connection's JSON form: the node's own identity (instance role, service account)
        for a bucket; for git, the repository alone (GitHook refuses a missing connection)."""
        if self.source == "git":
            return {"conn_type": "git", "host": self.url}
        if self.source == "s3":
            return {"conn_type": "aws", "extra": {"region_name": self.region}}
        return {"conn_type": "google_cloud_platform", "extra": {}}


_IMAGE_CONFIG: dict[str, Any] = {"name": IMAGE_BUNDLE, "classpath": LOCAL_CLASSPATH, "kwargs": {}}


def local_bundles_env(folders: Mapping[str, str]) -> dict[str, str]:
    """`make up DAGS=...` (local mode): the repo's dags/ and each named folder as a LocalDagBundle,
    for Airflow's own process environment (no YAML, no `docker stack deploy` in between). A local
    bundle is read in place, so a file saved there is parsed at the next directory scan."""
    configs = [_IMAGE_CONFIG]
    configs += [{"name": n, "classpath": LOCAL_CLASSPATH, "kwargs": {"path": p}} for n, p in folders.items()]
    return {CONFIG_LIST_ENV: json.dumps(configs)}


def _refresh(name: str, value: object) -> int:
    low, high = REFRESH_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise BundleError(f"bundle {name!r}: refresh_seconds must be a whole number, e.g. 60")
    if not low <= value <= high:
        raise BundleError(f"bundle {name!r}: refresh_seconds must be from {low} to {high}, e.g. 60")
    return int(value)


def _bundle(entry: Mapping[str, Any]) -> DagBundle:
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name == IMAGE_BUNDLE:
        raise BundleError(
            f"bundle name {name!r} must match {NAME_RE.pattern} and not be {IMAGE_BUNDLE!r}, e.g. 'team'"
        )
    git, bucket = entry.get("git"), entry.get("bucket")
    if (git is None) == (bucket is None):
        raise BundleError(f"bundle {name!r} needs exactly one of git or bucket")
    spec = git if git is not None else bucket
    if not isinstance(spec, Mapping):
        raise BundleError(f'bundle {name!r}: git or bucket must be an object, e.g. {{"url": ...}}')
    if git is not None:
        url = str(spec.get("url", ""))
        if not GIT_URL_RE.fullmatch(url):
            raise BundleError(
                f"bundle {name!r}: git url {url!r} must be https://HOST/PATH, ssh://HOST/PATH or "
                "git@HOST:PATH, with no user or token in it"
            )
        return DagBundle(
            name=name,
            source="git",
            url=url,
            refresh_seconds=_refresh(name, spec.get("refresh_seconds", 60)),
            ref=str(spec.get("ref") or "main"),
            subdir=spec.get("subdir"),
            credential=spec.get("credential"),
        )
    url = str(spec.get("url", ""))
    match = BUCKET_URL_RE.fullmatch(url)
    if match is None:
        raise BundleError(
            f"bundle {name!r}: bucket url {url!r} must be s3://BUCKET/PREFIX/ or gs://BUCKET/PREFIX/ "
            "(the prefix a folder ending in '/')"
        )
    region = spec.get("region")
    if match.group(1) == "s3" and not region:
        raise BundleError(f"bundle {name!r}: an S3 bucket needs its region, e.g. us-east-1")
    return DagBundle(
        name=name,
        source=match.group(1),
        url=url,
        refresh_seconds=_refresh(name, spec.get("refresh_seconds", 60)),
        region=region if match.group(1) == "s3" else None,
    )


def parse_dag_bundles(text: str) -> list[DagBundle]:
    """The bundles of a `--dag-bundles` JSON list (see the module's docstring)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"--dag-bundles must be a JSON list: {exc}") from None
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise BundleError('--dag-bundles must be a JSON list of objects, e.g. [{"name": "team", ...}]')
    bundles = [_bundle(e) for e in raw]
    names = [b.name for b in bundles]
    if len(set(names)) != len(names):
        raise BundleError(f"bundle names must be unique, got {names}")
    return bundles


def _quoted(value: object) -> str:
    """A YAML scalar that `docker stack deploy` leaves alone: JSON text in a JSON string (JSON is
    YAML), `$` doubled against interpolation."""
    return json.dumps(json.dumps(value, separators=(",", ":"))).replace("$", "$$")


def dag_bundles_env(bundles: Sequence[DagBundle]) -> dict[str, str]:
    """The settings every Airflow service gets (the dag-processor parses the bundles, the
    scheduler and API server know them by name, a worker loads the one its task runs from): the
    bundle list, the image's own folder first, and one keyless connection per bundle. A private
    repository's credential never passes here (git_secrets, git_connections_env)."""
    if not bundles:
        return {}
    configs = [_IMAGE_CONFIG, *(b.config() for b in bundles)]
    env = {CONFIG_LIST_ENV: _quoted(configs)}
    env |= {f"AIRFLOW_CONN_{b.conn_id.upper()}": _quoted(b.connection()) for b in bundles}
    return env


def git_secret_target(bundle: DagBundle) -> str:
    """The file a private repository's credential is mounted as, /run/secrets/<this>, whichever
    Swarm secret (one per value, airtasks.stack.git_credentials) holds it."""
    return f"airtasks_git_{bundle.name.replace('-', '_')}"


def git_secrets(bundles: Sequence[DagBundle], names: Mapping[str, str]) -> dict[str, str]:
    """target => Swarm secret, for each bundle that names a credential; `names` is what `airtasks
    secrets create --git-secrets-out` wrote (bundle => Swarm secret)."""
    private = [b for b in bundles if b.credential]
    missing = [b for b in private if b.name not in names]
    if missing:
        pairs = " ".join(f"--git-credential {b.name}={b.credential}" for b in missing)
        raise BundleError(
            f"bundle {missing[0].name!r} names a credential but has no Swarm secret; create it with "
            f"airtasks secrets create {pairs} --git-secrets-out FILE, then render with --git-secrets FILE"
        )
    return {git_secret_target(b): names[b.name] for b in private}


def git_connections_env(bundles: Sequence[DagBundle]) -> dict[str, str]:
    """For the services that clone (dag-processor, workers): which connection gets which mounted
    secret, by name only. The image's entry point (airtasks.stack.git_connections) adds the value
    to that connection for its own process; the stack file and `docker inspect` never see it."""
    targets = {f"AIRFLOW_CONN_{b.conn_id.upper()}": git_secret_target(b) for b in bundles if b.credential}
    return {"AIRTASKS_GIT_CONNECTIONS": _quoted(targets)} if targets else {}
