"""A minimal local evaluator of AWS IAM identity policies, for resource-level questions on the
policy documents Terraform plans (tests/terraform/test_least_privilege.py).

Why our own: moto enforces IAM actions but matches no resource ARN or condition for SSM and Auto
Scaling; policyuniverse parses and expands policies but evaluates no request; principalmapper's
local check (1.1.5, 2022, unmaintained) no longer imports on Python 3.11. So this implements only
what our policies use, following AWS's documented evaluation logic, and refuses anything else
(tests/unit/test_iam_eval.py checks it against documented cases):

- an explicit Deny wins; else an Allow; else the request is implicitly denied;
- Action / NotAction: `*` and `?` wildcards, case-insensitive;
- Resource / NotResource: `*` and `?` wildcards, case-sensitive;
- Condition: every operator block and every key in it must hold (AND), any of a key's values may
  match (OR; for the negated operators: none may). Operators: StringEquals, StringNotEquals,
  StringEqualsIgnoreCase, StringLike, StringNotLike, ArnEquals, ArnLike, ArnNotEquals, ArnNotLike,
  Bool, Null, each also with `IfExists`. A key missing from the request fails a positive operator,
  passes a negated one, passes anything `...IfExists`. Condition keys are case-insensitive.
  Set operators (ForAnyValue:/ForAllValues:) and policy variables are not supported: ValueError.

GCP: `gcp_condition_holds` evaluates the part of IAM Conditions (CEL) that a binding limited by
resource name uses (https://cloud.google.com/iam/docs/conditions-attribute-reference#resource-name):
`resource.name` with `extract("<prefix>{var}<suffix>")` (the text after the first `<prefix>`, up
to the next `<suffix>` or the end; "" when the template does not match), `startsWith`, `endsWith`,
`==`, `!=`, `!`, `&&`, `||`, parentheses and string literals. Anything else: ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

Decision = Literal["allow", "deny", "implicit-deny"]

_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool) -> bool:
    if "${" in pattern:
        raise ValueError(f"policy variables are not supported: {pattern!r}")
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _value_matches(operator: str, expected: str, actual: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in {"StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"}:
        return expected == actual
    if base == "StringEqualsIgnoreCase":
        return expected.lower() == actual.lower()
    if base in {"StringLike", "StringNotLike", "ArnLike", "ArnNotLike"}:
        return _wildcard(expected, actual, ignore_case=False)
    if base == "Bool":
        return str(expected).lower() == str(actual).lower()
    raise ValueError(f"condition operator {operator!r} is not supported")


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    if ":" in operator and operator.split(":", maxsplit=1)[0] in {"ForAnyValue", "ForAllValues"}:
        raise ValueError(f"set operator {operator!r} is not supported")
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise ValueError(f"condition operator {operator!r} is not supported")
    lowered = {k.lower(): v for k, v in context.items()}
    present = key.lower() in lowered
    if base == "Null":
        (want,) = [str(v).lower() for v in _list(expected)]
        return (not present) == (want == "true")
    if not present:
        return operator.endswith("IfExists") or base in _NEGATED
    actuals = [str(a) for a in _list(lowered[key.lower()])]
    matched = any(_value_matches(operator, str(e), a) for e in _list(expected) for a in actuals)
    return not matched if base in _NEGATED else matched


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any]
) -> bool:
    if "Action" in statement:
        if not any(_wildcard(p, action, ignore_case=True) for p in _list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_wildcard(p, action, ignore_case=True) for p in _list(statement["NotAction"])):
            return False
    else:
        raise ValueError("a statement needs Action or NotAction")
    if "Resource" in statement:
        if not any(_wildcard(p, resource, ignore_case=False) for p in _list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_wildcard(p, resource, ignore_case=False) for p in _list(statement["NotResource"])):
            return False
    else:
        raise ValueError("an identity policy statement needs Resource or NotResource")
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def evaluate(
    policies: list[Mapping[str, Any]] | Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """The decision for one request against identity policies (no boundary, SCP or resource policy)."""
    docs = policies if isinstance(policies, list) else [policies]
    allowed = False
    for doc in docs:
        for statement in _list(doc["Statement"]):
            if not _statement_applies(statement, action, resource, context or {}):
                continue
            if statement["Effect"] == "Deny":
                return "deny"
            if statement["Effect"] == "Allow":
                allowed = True
    return "allow" if allowed else "implicit-deny"


def allowed(
    policies: list[Mapping[str, Any]] | Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> bool:
    return evaluate(policies, action, resource, context) == "allow"


# ---------------------------------------------------------------------------------------------------
# GCP IAM Conditions: the resource-name subset of CEL
# ---------------------------------------------------------------------------------------------------

_CEL_TOKEN = re.compile(
    r'\s*(\|\||&&|==|!=|!|\(|\)|"(?:[^"\\]|\\.)*"|resource\.name\b|\.(?:extract|startsWith|endsWith)\()'
)


def _extract(name: str, template: str) -> str:
    match = re.fullmatch(r"(.*?)\{\w+\}(.*)", template)
    if not match:
        raise ValueError(f"extract template without a {{variable}}: {template!r}")
    prefix, suffix = match.groups()
    start = name.find(prefix)
    if start < 0:
        return ""
    rest = name[start + len(prefix) :]
    if not suffix:
        return rest
    end = rest.find(suffix)
    return rest[:end] if end >= 0 else ""


class _Cel:
    def __init__(self, expression: str, resource_name: str) -> None:
        self.tokens: list[str] = []
        pos, text = 0, expression.strip()
        while pos < len(text):
            match = _CEL_TOKEN.match(text, pos)
            if not match:
                raise ValueError(f"CEL not supported here: {text[pos : pos + 40]!r}")
            self.tokens.append(match.group(1))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.name = resource_name

    def _take(self, want: str | None = None) -> str:
        if not self.tokens:
            raise ValueError("CEL expression ends early")
        token = self.tokens.pop(0)
        if want is not None and token != want:
            raise ValueError(f"CEL: expected {want!r}, got {token!r}")
        return token

    def _peek(self) -> str | None:
        return self.tokens[0] if self.tokens else None

    def _string(self) -> str:
        token = self._take()
        if not token.startswith('"'):
            raise ValueError(f"CEL: expected a string literal, got {token!r}")
        return str(token[1:-1].encode().decode("unicode_escape"))

    def parse(self) -> bool:
        value = self._or()
        if self.tokens:
            raise ValueError(f"CEL: unexpected {self.tokens[0]!r}")
        return value

    def _or(self) -> bool:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value or right
        return value

    def _and(self) -> bool:
        value = self._not()
        while self._peek() == "&&":
            self._take()
            right = self._not()
            value = value and right
        return value

    def _not(self) -> bool:
        if self._peek() == "!":
            self._take()
            return not self._not()
        if self._peek() == "(":
            self._take()
            value = self._or()
            self._take(")")
            return value
        left = self._value()
        if isinstance(left, bool):
            return left
        op = self._take()
        if op not in {"==", "!="}:
            raise ValueError(f"CEL: a string needs == or !=, got {op!r}")
        right = self._value()
        return (left == right) if op == "==" else (left != right)

    def _value(self) -> str | bool:
        token = self._peek()
        if token is not None and token.startswith('"'):
            return self._string()
        self._take("resource.name")
        value: str = self.name
        if self._peek() == ".extract(":
            self._take()
            value = _extract(value, self._string())
            self._take(")")
        if self._peek() in {".startsWith(", ".endsWith("}:
            method = self._take()
            arg = self._string()
            self._take(")")
            return value.startswith(arg) if method == ".startsWith(" else value.endswith(arg)
        return value


def gcp_condition_holds(expression: str, resource_name: str) -> bool:
    """Whether an IAM condition on `resource.name` holds for a request on `resource_name`."""
    return _Cel(expression, resource_name).parse()


__all__ = ["Decision", "allowed", "evaluate", "gcp_condition_holds"]
