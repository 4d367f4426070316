"""Patterns for the cloud names that settings carry: a region, and a bucket's URL.

One place, so that task logs, backups and the external database's secret accept the same names.
"""

from __future__ import annotations

import re

# An AWS region such as us-east-1 or ap-southeast-2 (GCP's buckets need none).
REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]+"
REGION_RE = re.compile(rf"^{REGION}$")
# s3:// or gs:// and a bucket name as both clouds allow it: 3-63 lower-case letters, digits, dots
# and dashes, starting and ending with a letter or digit. Groups: the scheme, the bucket.
BUCKET_URL = r"(s3|gs)://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
