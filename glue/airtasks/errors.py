"""The one error type the package raises on purpose; the CLI prints it as one line, no traceback."""


class AirtasksError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ConfigError(AirtasksError):
    """The scaler configuration (file, env or Terraform output) is wrong."""


class SourceReadError(AirtasksError):
    """A load source (Airflow API, RabbitMQ management API) could not be read: the queue holds."""


class BackendError(AirtasksError):
    """A group backend (AWS, GCP, Swarm) call failed."""


class ControlError(AirtasksError):
    """A worker could not be told to stop or resume taking tasks (Celery control, Swarm drain)."""
