"""Where the metadata database's backups go and how often: the `--backups` JSON of the stack."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from airtasks.errors import AirtasksError
from airtasks.locations import BUCKET_URL, REGION_RE

# s3://BUCKET/PREFIX; the prefix is where the grants are (only the managers may read a dump,
# which holds every connection's and variable's value).
LOCATION_RE = re.compile(rf"^{BUCKET_URL}/([A-Za-z0-9._/-]*[A-Za-z0-9._-])/?$")
MIN_EVERY_MINUTES = 5
MAX_EVERY_MINUTES = 1440
EXAMPLE = '{"url": "s3://acme-airtasks-backups/backups", "region": "us-east-1", "every_minutes": 60}'


class BackupError(AirtasksError):
    """A backup setting is wrong, or a backup or restore could not be made."""


@dataclass(frozen=True)
class BackupSettings:
    """`url`: s3:// or gs://BUCKET/PREFIX; `region`: the bucket's (S3 only); `every_minutes`: the
    recovery point."""

    scheme: str
    bucket: str
    prefix: str
    region: str | None
    every_minutes: int

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"

    def to_json(self) -> str:
        fields: dict[str, object] = {"url": self.url, "every_minutes": self.every_minutes}
        if self.region is not None:
            fields["region"] = self.region
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> BackupSettings:
        try:
            raw: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackupError(f"backups must be a JSON object ({exc.msg}), e.g. {EXAMPLE}") from None
        if not isinstance(raw, dict):
            raise BackupError(f"backups must be a JSON object, e.g. {EXAMPLE}")
        unknown = sorted(set(raw) - {"url", "region", "every_minutes"})
        if unknown:
            raise BackupError(
                f"backups: unknown key(s) {', '.join(unknown)}; the keys are url, region and every_minutes"
            )
        url = raw.get("url")
        match = LOCATION_RE.fullmatch(url) if isinstance(url, str) else None
        if match is None:
            raise BackupError(
                f"backups.url must be s3://BUCKET/PREFIX or gs://BUCKET/PREFIX, e.g. {EXAMPLE} (got {url!r})"
            )
        scheme, bucket, prefix = match.groups()
        region = raw.get("region")
        if scheme == "gs":
            if region is not None:
                raise BackupError("backups.region is for S3 only; drop it for a gs:// bucket")
        elif not isinstance(region, str) or not REGION_RE.fullmatch(region):
            raise BackupError(
                f"backups.region must be the S3 bucket's region, e.g. us-east-1 (got {region!r})"
            )
        every = raw.get("every_minutes", 60)
        if (
            not isinstance(every, int)
            or isinstance(every, bool)
            or not MIN_EVERY_MINUTES <= every <= MAX_EVERY_MINUTES
        ):
            raise BackupError(
                f"backups.every_minutes must be a whole number from {MIN_EVERY_MINUTES} to "
                f"{MAX_EVERY_MINUTES} (e.g. 60), got {every!r}"
            )
        return cls(scheme, bucket, prefix.rstrip("/"), region if scheme == "s3" else None, every)
