"""[START example_docker_doc]
Example: run a container on a worker node.

Shows ``DockerOperator`` (the docker provider): the task starts a container on the worker node's
own Docker daemon (the worker service mounts ``/var/run/docker.sock``), streams its output into
the task log and removes it when it succeeded. The image is the param ``image``; left empty, it is
the Airflow Variable ``airtasks_example_docker_image`` (the stack sets it on every worker to the
Air-Tasks image itself, which every node already has), else ``debian:bookworm-slim``. Any image
with ``/bin/sh`` works; it must be on the node or pullable.

Trigger it
- UI: DAGs -> ``example_docker`` -> Trigger; set ``image`` and ``words`` in the form.
- CLI: ``airtasks trigger example_docker --conf '{"words": 5}' --wait``
[END example_docker_doc]
"""

from __future__ import annotations

import pendulum
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import Param, dag

QUEUE = "default"
DEFAULT_IMAGE = "debian:bookworm-slim"
# Rendered when the task runs (no Variable lookup at parse time).
IMAGE_TEMPLATE = (
    "{{ params.image or var.value.get('airtasks_example_docker_image', '" + DEFAULT_IMAGE + "') }}"
)
SCRIPT = 'set -eu; words=$(seq "$WORDS" | wc -l); echo "in a container on $(hostname): $words words"'


# [START example_docker]
@dag(
    dag_id="example_docker",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # schedule=None: runs only when triggered
    tags=["airtasks", "example"],
    doc_md=__doc__,
    params={
        "image": Param(
            "",
            type="string",
            description="Image to run (needs /bin/sh; on the node or pullable). Empty: the default.",
        ),
        "words": Param(3, type="integer", minimum=1, maximum=100, description="How many words to count."),
    },
)
def example_docker() -> None:
    """Run a small shell script in a container on the worker's Docker daemon."""
    DockerOperator(
        task_id="count_words",
        queue=QUEUE,
        image=IMAGE_TEMPLATE,
        command=["sh", "-c", SCRIPT],
        environment={"WORDS": "{{ params.words }}"},
        docker_url="unix://var/run/docker.sock",
        network_mode="none",
        auto_remove="success",
        mount_tmp_dir=False,
    )


# [END example_docker]

example_docker()
