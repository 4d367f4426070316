"""[START example_docker_doc]
Example: run a container on a worker node.

Shows ``@task.docker`` (the docker provider): the task's code runs inside a container started on
the worker node's own Docker daemon (the worker service mounts ``/var/run/docker.sock``). The image
is the param ``image``; left empty, it is the Airflow Variable ``airtasks_example_docker_image``
(the stack sets it on every worker to the Air-Tasks image itself, which every node already has),
else ``python:3.11-slim-bookworm``. It needs ``python3`` and must be on the node or pullable.

Trigger it
- UI: DAGs -> ``example_docker`` -> Trigger; set ``image`` if the default cannot be pulled.
- CLI: ``airtasks trigger example_docker --wait`` (or ``--conf '{"image": "python:3.12-slim"}'``)
[END example_docker_doc]
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

QUEUE = "default"
DEFAULT_IMAGE = "python:3.11-slim-bookworm"
# Rendered when the task runs (no Variable lookup at parse time).
IMAGE_TEMPLATE = (
    "{{ params.image or var.value.get('airtasks_example_docker_image', '" + DEFAULT_IMAGE + "') }}"
)


# [START example_docker]
@dag(
    dag_id="example_docker",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["airtasks", "example"],
    doc_md=__doc__,
    params={
        "image": Param(
            "",
            type="string",
            description="Image to run (needs python3; on the node or pullable). Empty: the default.",
        ),
        "words": Param(3, type="integer", minimum=1, maximum=100, description="How many words to count."),
    },
)
def example_docker() -> None:
    """Run a small Python function in a container on the worker's Docker daemon."""

    @task.docker(
        queue=QUEUE,
        image=IMAGE_TEMPLATE,
        auto_remove="success",
        mount_tmp_dir=False,
        network_mode="none",
        docker_url="unix://var/run/docker.sock",
    )
    def count_words(words: str) -> int:
        import platform  # noqa: PLC0415 - runs inside the container

        text = " ".join(["air"] * int(words))
        print(f"in a container on {platform.node()}: {len(text.split())} words")
        return len(text.split())

    count_words("{{ params.words }}")


# [END example_docker]

example_docker()
