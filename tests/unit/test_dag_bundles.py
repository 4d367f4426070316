"""Your DAG bundles in the stack (`airtasks stack render --dag-bundles`): Airflow's
`dag_bundle_config_list` beside the image's own folder, one keyless connection per bundle, and no
secret anywhere in the stack file."""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from airtasks.cli import cli
from airtasks.stack.bundles import (
    BUCKET_CLASSPATHS,
    GIT_CLASSPATH,
    IMAGE_BUNDLE,
    LOCAL_CLASSPATH,
    BundleError,
    parse_dag_bundles,
)
from airtasks.stack.render import render_stack

# What modules/aws/cluster renders from one git and one bucket bundle (tests/terraform checks that
# the plan hands the manager this shape), plus a GCS folder as modules/gcp/cluster renders it.
BUNDLES = [
    {
        "name": "team",
        "git": {
            "url": "https://git.example.org/team/dags.git",
            "ref": "main",
            "subdir": "dags",
            "refresh_seconds": 60,
            "credential": "/team/git-token",
        },
    },
    {
        "name": "shared",
        "bucket": {"url": "s3://acme-dags/shared/", "region": "eu-west-1", "refresh_seconds": 30},
    },
    {"name": "gcs", "bucket": {"url": "gs://acme-dags/etl/daily/", "refresh_seconds": 300}},
]
CONFIG_LIST = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


def airflow_services(text: str) -> dict[str, dict[str, Any]]:
    services = yaml.safe_load(text)["services"]
    return {n: s for n, s in services.items() if n.startswith(("airflow-", "worker-"))}


def test_no_bundles_leaves_airflows_default() -> None:
    """The shipped stack: Airflow's own default, the image's dags folder only."""
    for service in airflow_services(render_stack()).values():
        assert CONFIG_LIST not in service["environment"]


# What `airtasks secrets create --git-credential team=/team/git-token --git-secrets-out` writes.
GIT_SECRET_NAMES = {"team": "airtasks_git_team_0123456789ab"}


def test_every_airflow_service_gets_the_bundles_after_the_images_own() -> None:
    services = airflow_services(
        render_stack(dag_bundles=parse_dag_bundles(json.dumps(BUNDLES)), git_secret_names=GIT_SECRET_NAMES)
    )
    assert {"airflow-dag-processor", "airflow-scheduler", "airflow-apiserver", "worker-default"} <= set(
        services
    )
    for name, service in services.items():
        env = service["environment"]
        assert json.loads(env[CONFIG_LIST]) == [
            {"name": IMAGE_BUNDLE, "classpath": LOCAL_CLASSPATH, "kwargs": {}},
            {
                "name": "team",
                "classpath": GIT_CLASSPATH,
                "kwargs": {
                    "repo_url": "https://git.example.org/team/dags.git",
                    "tracking_ref": "main",
                    "subdir": "dags",
                    "git_conn_id": "airtasks_dags_team",
                    "refresh_interval": 60,
                },
            },
            {
                "name": "shared",
                "classpath": BUCKET_CLASSPATHS["s3"],
                "kwargs": {
                    "bucket_name": "acme-dags",
                    "prefix": "shared/",
                    "aws_conn_id": "airtasks_dags_shared",
                    "refresh_interval": 30,
                },
            },
            {
                "name": "gcs",
                "classpath": BUCKET_CLASSPATHS["gs"],
                "kwargs": {
                    "bucket_name": "acme-dags",
                    "prefix": "etl/daily/",
                    "gcp_conn_id": "airtasks_dags_gcs",
                    "refresh_interval": 300,
                },
            },
        ], name
        # Keyless connections: the node's own identity reads a bucket; GitHook needs a connection.
        assert json.loads(env["AIRFLOW_CONN_AIRTASKS_DAGS_TEAM"]) == {
            "conn_type": "git",
            "host": "https://git.example.org/team/dags.git",
        }
        assert json.loads(env["AIRFLOW_CONN_AIRTASKS_DAGS_SHARED"]) == {
            "conn_type": "aws",
            "extra": {"region_name": "eu-west-1"},
        }
        assert json.loads(env["AIRFLOW_CONN_AIRTASKS_DAGS_GCS"]) == {
            "conn_type": "google_cloud_platform",
            "extra": {},
        }
        # A private repository's credential is no setting of any service, not even by name.
        assert not [v for v in env.values() if "/team/git-token" in str(v)], name


def test_a_dollar_in_a_url_survives_docker_stack_deploy() -> None:
    """`docker stack deploy` interpolates `$`: the stack doubles it, YAML keeps the rest as is."""
    bundles = [{"name": "odd", "git": {"url": "https://git.example.org/$team/dags.git"}}]
    text = render_stack(dag_bundles=parse_dag_bundles(json.dumps(bundles)))
    env = airflow_services(text)["airflow-dag-processor"]["environment"]
    (odd,) = [b for b in json.loads(env[CONFIG_LIST]) if b["name"] == "odd"]
    assert odd["kwargs"]["repo_url"] == "https://git.example.org/$$team/dags.git"


@pytest.mark.parametrize(
    ("classpath", "kwargs"),
    [
        (LOCAL_CLASSPATH, set()),
        (BUCKET_CLASSPATHS["s3"], {"bucket_name", "prefix", "aws_conn_id"}),
    ],
)
def test_classpaths_and_kwargs_are_airflows(classpath: str, kwargs: set[str]) -> None:
    """The classes this venv's Airflow and amazon provider ship (the git and google providers are
    not installed here: tests/integration/test_git_bundle.py runs GitDagBundle in the image with
    these kwargs; GCSDagBundle's follow its signature)."""
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert kwargs <= set(inspect.signature(cls.__init__).parameters)
    assert "refresh_interval" in inspect.signature(cls.__mro__[1].__init__).parameters


@pytest.mark.parametrize(
    ("bundles", "words"),
    [
        ("{", "must be a JSON list"),
        ('{"name": "x"}', "must be a JSON list of objects"),
        ([{"name": "Team", "git": {"url": "https://h/r.git"}}], "must match"),
        ([{"name": IMAGE_BUNDLE, "git": {"url": "https://h/r.git"}}], "not be 'dags-folder'"),
        ([{"name": "t"}], "exactly one of git or bucket"),
        ([{"name": "t", "git": "https://h/r.git"}], "must be an object"),
        ([{"name": "t", "git": {"url": "http://h/r.git"}}], "must be https://HOST/PATH"),
        ([{"name": "t", "git": {"url": "https://me:token@h/r.git"}}], "no user or token"),
        ([{"name": "t", "git": {"url": "https://h/r.git", "refresh_seconds": 5}}], "from 10 to 86400"),
        ([{"name": "t", "git": {"url": "https://h/r.git", "refresh_seconds": 1.5}}], "a whole number"),
        ([{"name": "t", "bucket": {"url": "s3://acme/shared"}}], "ending in '/'"),
        ([{"name": "t", "bucket": {"url": "s3://acme/shared/"}}], "needs its region"),
        (
            [
                {"name": "t", "bucket": {"url": "gs://a-b/x/"}},
                {"name": "t", "bucket": {"url": "gs://a-b/y/"}},
            ],
            "must be unique",
        ),
    ],
)
def test_bad_bundles_are_refused(bundles: object, words: str) -> None:
    text = bundles if isinstance(bundles, str) else json.dumps(bundles)
    with pytest.raises(BundleError, match=words):
        parse_dag_bundles(text)
    result = CliRunner().invoke(cli, ["stack", "render", "--dag-bundles", text])
    assert result.exit_code == 2
    assert "--dag-bundles" in result.output
