"""Shared HTTP plumbing for the sources: bounded, short retries and one error type."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import certifi
import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from airtasks.errors import SourceReadError

Params = Mapping[str, str | int | Sequence[str]]


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@functools.cache
def tls_context(verify: bool) -> ssl.SSLContext | bool:
    """httpx's `verify`, one SSL context per process: httpx would build one per client, loading
    the CA bundle each time, and the Cluster page builds its clients on every request."""
    return ssl.create_default_context(cafile=certifi.where()) if verify else False


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _Retryable)


def describe(exc: BaseException) -> str:
    if isinstance(exc, _Retryable):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.TransportError):
        return f"cannot connect ({exc or type(exc).__name__})"
    return str(exc) or type(exc).__name__


def request(
    client: httpx.Client,
    source: str,
    method: str,
    url: str,
    *,
    attempts: int = 3,
    budget_seconds: float = 10.0,
    params: Params | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    ok: Sequence[int] = (),
) -> httpx.Response:
    """One request with up to `attempts` tries on connection errors and 5xx, within `budget_seconds`.

    Any other non-2xx status (unless listed in `ok`) raises SourceReadError naming the source.
    """

    def _once() -> httpx.Response:
        response = client.request(method, url, params=params, json=json, headers=headers)
        if response.status_code >= 500:
            raise _Retryable(response)
        return response

    def _raise(state: RetryCallState) -> httpx.Response:
        assert state.outcome is not None
        exc = state.outcome.exception()
        assert exc is not None
        raise SourceReadError(f"{source}: {method} {url}: {describe(exc)} after {state.attempt_number} tries")

    retrying = Retrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(budget_seconds),
        wait=wait_exponential(multiplier=0.2, max=1.0),
        retry=retry_if_exception(_retryable),
        retry_error_callback=_raise,
        reraise=False,
    )
    try:
        response: httpx.Response = retrying(_once)
    except httpx.HTTPError as exc:
        raise SourceReadError(f"{source}: {method} {url}: {describe(exc)}") from None
    if response.is_success or response.status_code in ok:
        return response
    detail = response.text.strip().replace("\n", " ")[:200]
    raise SourceReadError(f"{source}: {method} {url}: HTTP {response.status_code} {detail}".rstrip())
