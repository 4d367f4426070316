"""Load sources, in the manner of Airflow hooks: one class per service, built from the config,
lazy clients, `test_connection()` giving (ok, message), and one error type (`SourceReadError`)
that names the source when a read fails."""

from airtasks.sources.airflow import AirflowSource, RunningTask
from airtasks.sources.rabbitmq import RabbitMQSource

__all__ = ["AirflowSource", "RabbitMQSource", "RunningTask"]
