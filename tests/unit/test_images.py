"""The one image path (airtasks_dev.images): which base the stack's images are built on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airtasks_dev import images


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No Docker here: record what would be pulled; the debootstrap base is a fixed tag."""
    pulled: list[str] = []
    monkeypatch.delenv(images.BASE_ENV, raising=False)
    monkeypatch.setattr(images, "debootstrap_base", lambda: "airtasks-base:bookworm-test")
    monkeypatch.setattr(images, "image_exists", lambda ref: False)
    monkeypatch.setattr(images, "pull", lambda ref, timeout=0: pulled.append(ref) or False)
    images.base_image.cache_clear()
    yield pulled
    images.base_image.cache_clear()


def test_the_official_base_where_it_can_be_pulled(
    monkeypatch: pytest.MonkeyPatch, fresh_choice: list[str]
) -> None:
    monkeypatch.setattr(images, "pull", lambda ref, timeout=0: fresh_choice.append(ref) or True)
    assert images.base_image() == images.OFFICIAL_BASE == "python:3.11-slim-bookworm"
    assert images.base_image() == images.OFFICIAL_BASE
    assert fresh_choice == [images.OFFICIAL_BASE], "decided once a process"


def test_the_official_base_already_here_is_not_pulled(
    monkeypatch: pytest.MonkeyPatch, fresh_choice: list[str]
) -> None:
    monkeypatch.setattr(images, "image_exists", lambda ref: ref == images.OFFICIAL_BASE)
    assert images.base_image() == images.OFFICIAL_BASE
    assert fresh_choice == []


def test_the_debootstrap_base_where_nothing_can_be_pulled(fresh_choice: list[str]) -> None:
    assert images.base_image() == "airtasks-base:bookworm-test"
    assert fresh_choice == [images.OFFICIAL_BASE]


@pytest.mark.parametrize(
    ("forced", "base"),
    [("debootstrap", "airtasks-base:bookworm-test"), ("debian:bookworm", "debian:bookworm")],
)
def test_the_environment_forces_a_base(
    monkeypatch: pytest.MonkeyPatch, fresh_choice: list[str], forced: str, base: str
) -> None:
    monkeypatch.setenv(images.BASE_ENV, forced)
    assert images.base_image() == base
    assert fresh_choice == []


def test_every_stack_image_is_built_on_the_chosen_base() -> None:
    for spec in (images.airtasks_image_spec("b:1"), images.services_image_spec("b:1")):
        assert spec.build_args == {"BASE_IMAGE": "b:1"}
        assert spec.dockerfile.is_file()
        assert all(f.is_file() for f in spec.files())
    assert images.airtasks_image_spec().build_args == {"BASE_IMAGE": "airtasks-base:bookworm-test"}
