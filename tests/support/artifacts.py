"""Where tests leave what a person reads after a run (build logs, timelines): tests/artifacts/."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
