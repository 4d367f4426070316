"""Integration session helpers: start the stack's image builds early, in the background.

In a fresh CI the images (debootstrap base, Air-Tasks image, services image) take minutes to
build, mostly downloads; building them while the other integration tests run hides most of it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tests.support.docker_daemon import ensure_dockerd
from tests.support.images import stack_images

_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airtasks-images")
_images: Future[dict[str, str]] | None = None


def _build() -> dict[str, str]:
    ensure_dockerd()  # builds need the daemon, not the Swarm lock
    return stack_images()


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    global _images  # noqa: PLW0603 - one build per session
    if _images is None and any(
        item.nodeid.startswith("tests/integration/test_stack_swarm.py") for item in items
    ):
        _images = _pool.submit(_build)


@pytest.fixture(scope="session")
def stack_image_env() -> dict[str, str]:
    """The stack's image variables (AIRTASKS_IMAGE, ...), built (or found) by the background job."""
    return (_images or _pool.submit(_build)).result(timeout=1800)
