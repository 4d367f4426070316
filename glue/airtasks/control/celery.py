"""Cordon and uncordon one worker: Celery remote control over the broker.

`cordon` = `cancel_consumer(queue)` sent to exactly `celery@<instance id>`: the worker stops
taking new tasks from the queue and finishes what it runs (no signal, no grace period, so a long
task is never cut short). `uncordon` = `add_consumer(queue)`. `in_flight` asks the worker for its
active + reserved (prefetched) tasks: the re-check before a node is terminated.

Why Celery control and not only a Swarm drain: a drain stops the worker's container, and a busy
container gets SIGKILL after its stop grace period; cancel_consumer only stops the intake. Why
not Flower's HTTP API (which sends the same control messages): one more service on the critical
path, and its API is off unless authenticated. Swarm drain still happens, right before terminate.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from airtasks.config import Secret
from airtasks.errors import ControlError


class WorkerControl(Protocol):
    def cordon(self, node_id: str, queue: str) -> bool:
        """Stop `node_id`'s worker consuming `queue`. True if a worker confirmed, False if none answered."""
        ...

    def uncordon(self, node_id: str, queue: str) -> bool:
        """Resume consuming. True if a worker confirmed, False if none answered."""
        ...

    def in_flight(self, node_id: str) -> int | None:
        """Active + reserved tasks on that worker; None when no worker answered."""
        ...


def _is_connection_error(exc: BaseException) -> bool:
    from kombu.exceptions import OperationalError  # noqa: PLC0415 - kombu comes with celery

    return isinstance(exc, OSError | ConnectionError | OperationalError)


class CeleryControl:
    name = "celery"

    def __init__(self, broker_url: Secret, *, worker_name: str = "celery@{id}", timeout: float = 2.0) -> None:
        self._broker_url = broker_url
        self._worker_name = worker_name
        self._timeout = timeout
        self._app: Any = None

    def worker(self, node_id: str) -> str:
        return self._worker_name.format(id=node_id)

    @property
    def app(self) -> Any:
        if self._app is None:
            from celery import Celery  # noqa: PLC0415 - loaded only when a worker is cordoned

            app = Celery("airtasks-scaler", broker=self._broker_url.get(), set_as_current=False)
            app.conf.update(
                broker_connection_timeout=self._timeout,
                broker_connection_retry=False,
                broker_connection_max_retries=1,
            )
            self._app = app
        return self._app

    def _broadcast(self, command: str, node_id: str, **arguments: Any) -> list[dict[str, Any]]:
        # Two tries: a pooled connection may have died with a broker restart since the last pass.
        for attempt in (1, 2):
            try:
                replies = self.app.control.broadcast(
                    command,
                    arguments=arguments,
                    destination=[self.worker(node_id)],
                    reply=True,
                    timeout=self._timeout,
                    limit=1,
                )
            except Exception as exc:
                if attempt == 1 and _is_connection_error(exc):
                    self.close()
                    time.sleep(0.5)
                    continue
                raise ControlError(f"celery: {command} to {self.worker(node_id)} failed: {exc}") from None
            return list(replies or [])
        raise AssertionError("unreachable")

    def _confirmed(self, replies: list[dict[str, Any]], node_id: str, command: str) -> bool:
        for reply in replies:
            body = reply.get(self.worker(node_id))
            if isinstance(body, dict) and "error" in body:
                raise ControlError(f"celery: {command} on {self.worker(node_id)}: {body['error']}")
            if body is not None:
                return True
        return False

    def cordon(self, node_id: str, queue: str) -> bool:
        return self._confirmed(self._broadcast("cancel_consumer", node_id, queue=queue), node_id, "cordon")

    def uncordon(self, node_id: str, queue: str) -> bool:
        return self._confirmed(self._broadcast("add_consumer", node_id, queue=queue), node_id, "uncordon")

    def ping(self, node_id: str) -> bool:
        """Whether the node's worker answers over the broker, as `celery inspect ping` asks."""
        return self._confirmed(self._broadcast("ping", node_id), node_id, "ping")

    def consuming(self, node_id: str) -> list[str] | None:
        """Queues the worker consumes from now; None when it does not answer."""
        for reply in self._broadcast("active_queues", node_id):
            body = reply.get(self.worker(node_id))
            if isinstance(body, list):
                return [str(q.get("name")) for q in body if isinstance(q, dict)]
        return None

    def in_flight(self, node_id: str) -> int | None:
        total: int | None = None
        for command in ("active", "reserved"):
            for reply in self._broadcast(command, node_id):
                body = reply.get(self.worker(node_id))
                if isinstance(body, list):
                    total = (total or 0) + len(body)
        return total

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


__all__ = ["CeleryControl", "WorkerControl"]
