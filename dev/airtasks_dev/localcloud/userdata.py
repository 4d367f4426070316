"""User data as EC2 stores it, and the script cloud-init would run from it.

EC2 (and moto) hand user data back base64-encoded; the decoded bytes may be gzipped (Terraform's
`base64gzip`), a MIME multi-part archive (`cloudinit_config`), or a plain script. cloud-init runs
`#!` scripts and `text/x-shellscript` parts in order; `#cloud-config` is not supported here (the
boot scripts of `modules/swarm-boot` are shell scripts), and saying so beats silently doing nothing.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import gzip

from airtasks_dev.localcloud._sys import LocalCloudError

GZIP_MAGIC = b"\x1f\x8b"


def decode_b64(value: str | None) -> bytes:
    """The user data bytes from EC2's base64 form ('' or None: no user data)."""
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LocalCloudError(f"user data is not valid base64: {exc}") from None


def scripts(raw: bytes) -> list[bytes]:
    """The shell scripts cloud-init would run for this user data, in order."""
    if raw.startswith(GZIP_MAGIC):
        raw = gzip.decompress(raw)
    if not raw.strip():
        return []
    head = raw.lstrip()[:200].lower()
    if head.startswith(b"content-type: multipart/") or head.startswith(b"mime-version:"):
        message = email.message_from_bytes(raw, policy=email.policy.default)
        found: list[bytes] = []
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            ctype = part.get_content_type()
            if ctype == "text/x-shellscript" or (ctype == "text/plain" and payload.startswith(b"#!")):
                found.append(payload)
            else:
                raise LocalCloudError(f"user data part of type {ctype} is not supported by the local cloud")
        return found
    if raw.startswith(b"#!"):
        return [raw]
    first = raw.splitlines()[0][:60].decode(errors="replace")
    raise LocalCloudError(f"user data starting with {first!r} is not a script the local cloud can run")
