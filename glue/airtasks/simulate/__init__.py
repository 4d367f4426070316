"""The scaling-policy simulator: the scaler's own `decide()` against the alternatives, on a trace."""

from airtasks.simulate.report import Metrics, Report, format_table, simulate
from airtasks.simulate.settings import QueueSettings, Settings, load_settings
from airtasks.simulate.trace import KINDS, Task, generate, read_trace, write_trace

__all__ = [
    "KINDS",
    "Metrics",
    "QueueSettings",
    "Report",
    "Settings",
    "Task",
    "format_table",
    "generate",
    "load_settings",
    "read_trace",
    "simulate",
    "write_trace",
]
