"""`airtasks secrets create`: only absent secrets are created, values never printed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.fernet import Fernet

from airtasks.stack import secrets as sec


@dataclass
class FakeSecret:
    name: str


@dataclass
class FakeSecrets:
    existing: list[str] = field(default_factory=list)
    created: dict[str, bytes] = field(default_factory=dict)

    def list(self) -> list[FakeSecret]:
        return [FakeSecret(n) for n in [*self.existing, *self.created]]

    def create(self, name: str, data: bytes, labels: dict[str, str]) -> None:
        assert labels == sec.LABELS
        self.created[name] = data


@dataclass
class FakeClient:
    secrets: FakeSecrets

    def __init__(self, existing: list[str] | None = None) -> None:
        self.secrets = FakeSecrets(list(existing or []))


def test_creates_every_secret_once() -> None:
    client: Any = FakeClient()
    results = sec.create_secrets(client)
    assert [r.outcome for r in results] == ["created"] * len(sec.SECRET_NAMES)
    made = client.secrets.created
    Fernet(made[sec.FERNET_KEY])  # a valid key
    assert len(made[sec.ADMIN_PASSWORD]) >= 24
    assert len({made[n] for n in (sec.POSTGRES_PASSWORD, sec.RABBITMQ_PASSWORD, sec.ADMIN_PASSWORD)}) == 3
    cert = x509.load_pem_x509_certificate(made[sec.TLS_CERT])
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    again = sec.create_secrets(client)
    assert [r.outcome for r in again] == ["exists"] * len(sec.SECRET_NAMES)


def test_existing_secrets_are_never_rotated() -> None:
    client: Any = FakeClient([sec.FERNET_KEY, sec.TLS_CERT, sec.TLS_KEY])
    results = {r.name: r.outcome for r in sec.create_secrets(client)}
    assert results[sec.FERNET_KEY] == "exists"
    assert sec.FERNET_KEY not in client.secrets.created
    assert sec.TLS_CERT not in client.secrets.created


def test_given_tls_pair_is_used(tmp_path: Path) -> None:
    cert, key = sec.self_signed(["airtasks.example.org"])
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    client: Any = FakeClient()
    sec.create_secrets(client, tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem")
    assert client.secrets.created[sec.TLS_CERT] == cert
    with pytest.raises(sec.SecretsError, match="both"):
        sec.create_secrets(FakeClient(), tls_cert=tmp_path / "c.pem")  # type: ignore[arg-type]


def test_half_a_tls_pair_is_an_error() -> None:
    with pytest.raises(sec.SecretsError, match="only one"):
        sec.create_secrets(FakeClient([sec.TLS_CERT]))  # type: ignore[arg-type]


def test_admin_password_is_handed_over_only_when_generated() -> None:
    seen: list[bytes] = []
    client: Any = FakeClient()
    sec.create_secrets(client, on_admin_password=seen.append)
    assert seen == [client.secrets.created[sec.ADMIN_PASSWORD]]
    seen.clear()
    sec.create_secrets(client, on_admin_password=seen.append)
    assert seen == []


def test_certificate_is_handed_over_only_when_created() -> None:
    seen: list[bytes] = []
    client: Any = FakeClient()
    sec.create_secrets(client, tls_hostnames=["10.0.0.5"], on_tls_cert=seen.append)
    assert seen == [client.secrets.created[sec.TLS_CERT]]
    cert = x509.load_pem_x509_certificate(seen[0])
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    seen.clear()
    sec.create_secrets(client, on_tls_cert=seen.append)
    assert seen == []


def test_private_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    sec.write_private_file(path, b"x")
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        sec.write_private_file(path, b"y")
