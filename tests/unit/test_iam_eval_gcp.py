"""The GCP part of the local IAM evaluator (tests/support/iam_eval.py): resource-name conditions,
against the behaviour the IAM Conditions attribute reference documents for `resource.name`
(https://cloud.google.com/iam/docs/conditions-attribute-reference#resource-name)."""

from __future__ import annotations

import pytest

from tests.support.iam_eval import gcp_condition_holds

BUCKET_OBJECT = "projects/_/buckets/acme-orders-aaa/objects/data_lake/orders/2019/1.csv"
MIG = "projects/p/regions/europe-west1/instanceGroupManagers/airtasks-demo-default"


@pytest.mark.parametrize(
    ("expression", "name", "expected"),
    [
        # the reference's extract examples: the text after the template's prefix, up to its suffix
        ('resource.name.extract("/buckets/{name}/") == "acme-orders-aaa"', BUCKET_OBJECT, True),
        ('resource.name.extract("/objects/{name}") == "data_lake/orders/2019/1.csv"', BUCKET_OBJECT, True),
        ('resource.name.extract("/instances/{name}") == ""', BUCKET_OBJECT, True),  # no match: ""
        ('resource.name.extract("/buckets/{name}/").startsWith("acme-orders-")', BUCKET_OBJECT, True),
        ('resource.name.startsWith("projects/_/buckets/acme-")', BUCKET_OBJECT, True),
        ('resource.name.endsWith(".csv")', BUCKET_OBJECT, True),
        ('resource.name != "x"', MIG, True),
        (
            '!(resource.name.extract("/instanceGroupManagers/{name}").startsWith("airtasks-demo-"))',
            MIG,
            False,
        ),
        (
            'resource.name.endsWith(".txt") || resource.name.extract("/regions/{r}/") == "europe-west1"',
            MIG,
            True,
        ),
        ('resource.name.endsWith("default") && resource.name.startsWith("organizations/")', MIG, False),
    ],
)
def test_documented_cases(expression: str, name: str, expected: bool) -> None:
    assert gcp_condition_holds(expression, name) is expected


@pytest.mark.parametrize(
    "expression",
    [
        'resource.type == "compute.googleapis.com/Instance"',
        'resource.name.matches("^projects/")',
        'request.time < timestamp("2030-01-01T00:00:00Z")',
        'resource.name.extract("/instances/") == ""',
    ],
)
def test_what_it_does_not_know_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match=r"CEL|template"):
        gcp_condition_holds(expression, MIG)
