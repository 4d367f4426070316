"""The bucket that keeps the backups (S3 or Cloud Storage): one object per backup, named by the time
it was taken.

Names sort in time order (`airflow-YYYYmmddTHHMMSSZ.dump`), so the newest is the greatest. The
bucket's lifecycle rule removes old ones; nothing here deletes (the managers may not).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from airtasks.backup.settings import BackupError

NAME_RE = re.compile(r"^airflow-(\d{8}T\d{6}Z)\.dump$")
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, order=True)
class Backup:
    taken_at: dt.datetime
    key: str
    size: int = 0


def backup_name(taken_at: dt.datetime) -> str:
    return f"airflow-{taken_at.astimezone(dt.UTC).strftime(STAMP)}.dump"


def parse_key(key: str, size: int = 0) -> Backup | None:
    """A backup from its object key, or None for any other object under the prefix."""
    match = NAME_RE.fullmatch(key.rsplit("/", 1)[-1])
    if match is None:
        return None
    taken = dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.UTC)
    return Backup(taken, key, size)


class BackupStore(Protocol):
    url: str

    def list(self) -> list[Backup]:
        """Every backup under the prefix, oldest first."""

    def upload(self, path: Path, taken_at: dt.datetime) -> Backup: ...

    def download(self, backup: Backup, path: Path) -> None: ...

    def where(self, backup: Backup) -> str:
        """The backup's URL, for logs."""


def newest(store: BackupStore) -> Backup | None:
    backups = store.list()
    return backups[-1] if backups else None


class GcsStore:
    """Backups in Cloud Storage under `prefix/`, encrypted by Google's default encryption."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._gcs = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"gs://{bucket}/{self.prefix}"

    def list(self) -> list[Backup]:
        try:
            blobs = list(self._gcs.list_blobs(self.bucket, prefix=f"{self.prefix}/"))
        except Exception as exc:  # google.api_core's errors name the bucket and the permission
            raise BackupError(f"cannot list backups in {self.url}: {exc}") from exc
        found = (parse_key(blob.name, int(blob.size or 0)) for blob in blobs)
        return sorted(b for b in found if b is not None)

    def upload(self, path: Path, taken_at: dt.datetime) -> Backup:
        key = f"{self.prefix}/{backup_name(taken_at)}"
        try:
            self._gcs.bucket(self.bucket).blob(key).upload_from_filename(str(path))
        except Exception as exc:
            raise BackupError(f"cannot upload the backup to gs://{self.bucket}/{key}: {exc}") from exc
        return Backup(taken_at.astimezone(dt.UTC).replace(microsecond=0), key, path.stat().st_size)

    def where(self, backup: Backup) -> str:
        return f"gs://{self.bucket}/{backup.key}"

    def download(self, backup: Backup, path: Path) -> None:
        try:
            self._gcs.bucket(self.bucket).blob(backup.key).download_to_filename(str(path))
        except Exception as exc:
            raise BackupError(f"cannot download gs://{self.bucket}/{backup.key}: {exc}") from exc


class S3Store:
    """Backups in S3 under `prefix/`, encrypted by the bucket's default encryption."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"

    def list(self) -> list[Backup]:
        found: list[Backup] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/"
            ):
                for obj in page.get("Contents", []):
                    backup = parse_key(obj["Key"], int(obj.get("Size", 0)))
                    if backup is not None:
                        found.append(backup)
        except Exception as exc:  # botocore's errors name the bucket and the denied action
            raise BackupError(f"cannot list backups in {self.url}: {exc}") from exc
        return sorted(found)

    def upload(self, path: Path, taken_at: dt.datetime) -> Backup:
        key = f"{self.prefix}/{backup_name(taken_at)}"
        try:
            self._s3.upload_file(str(path), self.bucket, key)
        except Exception as exc:
            raise BackupError(f"cannot upload the backup to s3://{self.bucket}/{key}: {exc}") from exc
        return Backup(taken_at.astimezone(dt.UTC).replace(microsecond=0), key, path.stat().st_size)

    def where(self, backup: Backup) -> str:
        return f"s3://{self.bucket}/{backup.key}"

    def download(self, backup: Backup, path: Path) -> None:
        try:
            self._s3.download_file(self.bucket, backup.key, str(path))
        except Exception as exc:
            raise BackupError(f"cannot download s3://{self.bucket}/{backup.key}: {exc}") from exc
