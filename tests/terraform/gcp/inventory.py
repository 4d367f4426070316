"""Plan inventories for the GCP plan tests, and the skip where the google provider is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.terraform import REPO, google_provider_available

GOOGLE_SKIP_REASON = "hashicorp/google provider not installed"  # the one skip CI tolerates

needs_google = pytest.mark.skipif(not google_provider_available(), reason=GOOGLE_SKIP_REASON)

PLANS = Path(__file__).parent / "plans"
MISSING = "__missing__"


def check_inventory(summary: Any, inventory: Path) -> None:
    """Fabric-style subset match of a plan summary against a YAML inventory.

    `values` by address (listed keys only; lists length-checked; `__missing__` asserts absence),
    `counts` by resource type (0 = none of that type), `outputs` by name (equality).
    """
    expected = yaml.safe_load(inventory.read_text()) or {}
    where = inventory.relative_to(REPO)
    try:
        _match(expected.get("values", {}), summary.values, f"{where}: values")
        for type_, count in expected.get("counts", {}).items():
            got = summary.counts.get(type_, 0)
            assert got == count, f"{where}: {count} x {type_} expected, the plan has {got}"
        for name, value in expected.get("outputs", {}).items():
            assert name in summary.outputs, f"{where}: no output {name}"
            got = summary.outputs[name]
            got = got.get("value", MISSING) if isinstance(got, dict) and "sensitive" in got else got
            _match(value, got, f"{where}: outputs.{name}", exact=True)
    except AssertionError:
        print(yaml.safe_dump({"values": summary.values, "counts": summary.counts}, sort_keys=True))
        raise


def _match(expected: Any, actual: Any, path: str, *, exact: bool = False) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        if exact:
            assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            if value == MISSING:
                assert key not in actual, f"{path}.{key} should not exist: {actual.get(key)!r}"
                continue
            assert key in actual, f"{path}.{key} is not in the plan"
            _match(value, actual[key], f"{path}.{key}", exact=exact)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), (
            f"{path}: {len(actual)} items, expected {len(expected)}: {actual!r}"
        )
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _match(e, a, f"{path}[{i}]", exact=exact)
    elif isinstance(expected, str) and isinstance(actual, str):
        assert actual.strip() == expected.strip(), f"{path}: got {actual!r}, expected {expected!r}"
    else:
        assert actual == expected, f"{path}: got {actual!r}, expected {expected!r}"
