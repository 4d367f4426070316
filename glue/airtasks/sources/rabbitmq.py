"""The RabbitMQ management API as the second load source: ready + unacked messages per queue.

The broker's counters are sampled (every 5 s by default), so they lag the Airflow API a little;
a queue the broker does not know yet has no messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

import httpx

from airtasks.config import Credentials, RabbitMQSourceConfig
from airtasks.errors import SourceReadError
from airtasks.sources._http import request, tls_context


class RabbitMQSource:
    name = "rabbitmq"

    def __init__(
        self,
        config: RabbitMQSourceConfig,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._credentials = credentials
        self._transport = transport
        self._client: httpx.Client | None = None

    def get_conn(self) -> httpx.Client:
        if self._client is None:
            user, password = self._credentials.username, self._credentials.password
            auth = (user.get(), password.get() if password else "") if user else None
            self._client = httpx.Client(
                base_url=self.config.url,
                timeout=self.config.timeout_seconds,
                verify=tls_context(self.config.verify_tls),
                auth=auth,
                transport=self._transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return request(
            self.get_conn(),
            self.name,
            "GET",
            path,
            params=params,
            budget_seconds=max(2.0 * self.config.timeout_seconds, 3.0),
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._get(f"/api/vhosts/{quote(self.config.vhost, safe='')}")
        except SourceReadError as exc:
            return False, str(exc)
        return True, f"{self.name}: connected to {self.config.url}, vhost {self.config.vhost}"

    def queues(self) -> dict[str, int]:
        """Every queue of the vhost -> messages ready + unacknowledged (one request)."""
        response = self._get(
            f"/api/queues/{quote(self.config.vhost, safe='')}",
            params={"columns": "name,messages_ready,messages_unacknowledged"},
        )
        try:
            return {
                str(r["name"]): int(r.get("messages_ready") or 0) + int(r.get("messages_unacknowledged") or 0)
                for r in response.json()
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SourceReadError(f"{self.name}: unexpected reply from /api/queues") from None

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """queue -> messages ready + unacknowledged (0 for a queue that does not exist yet)."""
        found = self.queues()
        return {q: found.get(q, 0) for q in queues}


__all__ = ["RabbitMQSource"]
