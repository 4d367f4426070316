"""`make images`: build the images the tests use, before `make test` runs.

`make test` builds whatever is missing itself (the stack's images in the background from
collection, tests/support/fixtures.py; the local cloud's test image and the chain's image when
their first test needs them). On a fresh machine that is minutes of debootstrap, apt and pip,
spent beside the first tests and slowing them. CI (.ci/run) builds them first, as it installs
packages first. Each build is cached by a hash of its inputs, so a second call builds nothing.
"""

from __future__ import annotations

import time

from airtasks_dev.localcloud.images import e2e_base_image
from tests.e2e.chain import e2e_image
from tests.support.fixtures import build_stack_images


def main() -> None:
    started = time.monotonic()
    images = build_stack_images()
    built = {
        **images,
        "the local cloud's test image": e2e_base_image(),
        "the chain's image": e2e_image(images["AIRTASKS_IMAGE"]),
    }
    # Several of the stack's services share one image: print each tag once, with its users.
    users: dict[str, list[str]] = {}
    for name, tag in built.items():
        users.setdefault(tag, []).append(name)
    for tag, names in sorted(users.items(), key=lambda item: sorted(item[1])):
        print(f"images: {', '.join(sorted(names))}: {tag}")
    print(f"images: ready in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
