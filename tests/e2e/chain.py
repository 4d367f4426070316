"""What the cluster-in-a-box chain deploys: the test image (the Air-Tasks image plus tests/e2e/dags)
and the compose override (docker/docker-compose.test.yml plus tests/e2e/cluster.override.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.images import ARTIFACTS, ImageSpec, build

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OVERRIDES = (REPO / "docker" / "docker-compose.test.yml", HERE / "cluster.override.yml")


def e2e_image(base: str) -> str:
    """`base` (the Air-Tasks image) with the e2e DAGs on top; built once per content hash."""
    spec = ImageSpec(
        repository="airtasks-e2e",
        dockerfile=HERE / "images" / "airtasks-e2e.Dockerfile",
        context=HERE,
        include=(".dockerignore", "images/airtasks-e2e.Dockerfile", "dags"),
        build_args={"BASE_IMAGE": base},
    )
    return build(spec, log=ARTIFACTS / "build-airtasks-e2e.log").tag


def _merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def compose_override() -> str:
    """One compose file: the stack tests' timing overrides and the chain's own."""
    merged: dict[str, Any] = {}
    for path in OVERRIDES:
        _merge(merged, yaml.safe_load(path.read_text()))
    return yaml.safe_dump(merged, sort_keys=False)
