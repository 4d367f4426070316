"""The local IAM evaluator (tests/support/iam_eval.py) against cases whose outcome AWS documents
(policy evaluation logic, condition operators, missing keys, IfExists, Null, wildcards)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.iam_eval import evaluate

ARN = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:uuid:autoScalingGroupName/airtasks-demo-q"
PARAM = "arn:aws:ssm:us-east-1:123456789012:parameter/airtasks/demo/swarm/worker-token"


def allow(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


CASES = [
    # (policy, action, resource, context, expected)
    (allow(Action="ssm:GetParameter", Resource=PARAM), "ssm:GetParameter", PARAM, {}, "allow"),
    (
        allow(Action="SSM:getparameter", Resource=PARAM),
        "ssm:GetParameter",
        PARAM,
        {},
        "allow",
    ),  # actions: any case
    (allow(Action="ssm:Get*", Resource="*"), "ssm:GetParametersByPath", PARAM, {}, "allow"),
    (allow(Action="ssm:Get*", Resource="*"), "ssm:PutParameter", PARAM, {}, "implicit-deny"),
    (allow(Action="ssm:GetParamete?", Resource="*"), "ssm:GetParameter", PARAM, {}, "allow"),
    (allow(Action="ssm:GetParamete?", Resource="*"), "ssm:GetParameters", PARAM, {}, "implicit-deny"),
    (allow(NotAction="ssm:Put*", Resource="*"), "ssm:PutParameter", PARAM, {}, "implicit-deny"),
    (allow(NotAction="ssm:Put*", Resource="*"), "ssm:GetParameter", PARAM, {}, "allow"),
    (
        allow(Action="*", Resource=PARAM.upper()),
        "ssm:GetParameter",
        PARAM,
        {},
        "implicit-deny",
    ),  # ARNs: case matters
    (
        allow(Action="*", Resource="arn:aws:ssm:*:*:parameter/airtasks/demo/*"),
        "ssm:GetParameter",
        PARAM,
        {},
        "allow",
    ),
    (
        allow(Action="*", NotResource="arn:aws:ssm:*:*:parameter/airtasks/*"),
        "ssm:GetParameter",
        PARAM,
        {},
        "implicit-deny",
    ),
    (
        {
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "ssm:GetParameter", "Resource": PARAM},
            ]
        },
        "ssm:GetParameter",
        PARAM,
        {},
        "deny",  # an explicit deny wins
    ),
    # StringEquals on a resource tag: values are OR, keys are AND, keys case-insensitive
    (
        allow(
            Action="autoscaling:*",
            Resource=ARN,
            Condition={"StringEquals": {"aws:ResourceTag/team": ["a", "b"]}},
        ),
        "autoscaling:SetDesiredCapacity",
        ARN,
        {"aws:resourcetag/team": "b"},
        "allow",
    ),
    (
        allow(
            Action="autoscaling:*",
            Resource=ARN,
            Condition={"StringEquals": {"aws:ResourceTag/team": "a", "aws:ResourceTag/env": "prod"}},
        ),
        "autoscaling:SetDesiredCapacity",
        ARN,
        {"aws:ResourceTag/team": "a", "aws:ResourceTag/env": "dev"},
        "implicit-deny",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringEquals": {"aws:ResourceTag/team": "A"}}),
        "autoscaling:SetDesiredCapacity",
        ARN,
        {"aws:ResourceTag/team": "a"},
        "implicit-deny",  # StringEquals values: case matters
    ),
    # a key missing from the request: a positive operator fails, a negated one holds, IfExists holds
    (
        allow(Action="*", Resource="*", Condition={"StringEquals": {"aws:ResourceTag/team": "a"}}),
        "x:Y",
        ARN,
        {},
        "implicit-deny",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringNotEquals": {"aws:ResourceTag/team": "a"}}),
        "x:Y",
        ARN,
        {},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringEqualsIfExists": {"aws:ResourceTag/t": "a"}}),
        "x:Y",
        ARN,
        {},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringEqualsIfExists": {"aws:ResourceTag/t": "a"}}),
        "x:Y",
        ARN,
        {"aws:ResourceTag/t": "b"},
        "implicit-deny",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringNotEquals": {"k": ["a", "b"]}}),
        "x:Y",
        ARN,
        {"k": "b"},
        "implicit-deny",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringLike": {"k": "demo-*"}}),
        "x:Y",
        ARN,
        {"k": "demo-x"},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringNotLike": {"k": "demo-*"}}),
        "x:Y",
        ARN,
        {"k": "demo-x"},
        "implicit-deny",
    ),
    (
        allow(Action="*", Resource="*", Condition={"StringEqualsIgnoreCase": {"k": "DEMO"}}),
        "x:Y",
        ARN,
        {"k": "demo"},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:ssm:*"}}),
        "x:Y",
        ARN,
        {"aws:SourceArn": PARAM},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"Bool": {"aws:SecureTransport": "true"}}),
        "x:Y",
        ARN,
        {"aws:SecureTransport": True},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"Null": {"aws:ResourceTag/t": "true"}}),
        "x:Y",
        ARN,
        {},
        "allow",
    ),
    (
        allow(Action="*", Resource="*", Condition={"Null": {"aws:ResourceTag/t": "false"}}),
        "x:Y",
        ARN,
        {},
        "implicit-deny",
    ),
    (
        allow(Action="*", Resource="*", Condition={"Null": {"aws:ResourceTag/t": "false"}}),
        "x:Y",
        ARN,
        {"aws:ResourceTag/t": "v"},
        "allow",
    ),
    ({"Statement": []}, "ssm:GetParameter", PARAM, {}, "implicit-deny"),
]


@pytest.mark.parametrize(("policy", "action", "resource", "context", "expected"), CASES)
def test_documented_cases(
    policy: dict[str, Any], action: str, resource: str, context: dict[str, Any], expected: str
) -> None:
    assert evaluate(policy, action, resource, context) == expected


@pytest.mark.parametrize(
    "policy",
    [
        allow(Action="*", Resource="*", Condition={"ForAnyValue:StringEquals": {"k": "a"}}),
        allow(Action="*", Resource="*", Condition={"NumericLessThan": {"k": "1"}}),
        allow(Action="*", Resource="arn:aws:s3:::${aws:username}/*"),
    ],
)
def test_what_it_does_not_know_is_refused(policy: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not supported"):
        evaluate(policy, "x:Y", "arn:aws:s3:::bob/key", {"k": "a"})
