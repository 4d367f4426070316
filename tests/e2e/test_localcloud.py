"""The local cloud itself: instances in moto become nodes that boot from their user data.

These use small boot scripts written here; `test_swarm_boot.py` runs the real ones rendered by
`modules/swarm-boot`.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest

from airtasks_dev.devstack.moto import MotoServer
from airtasks_dev.localcloud import cgroups
from airtasks_dev.localcloud.cloud import LocalCloud
from airtasks_dev.localcloud.images import tiny_image
from airtasks_dev.localcloud.network import PREFIX, Network, cleanup_leftovers
from airtasks_dev.localcloud.node import Instance, Node
from airtasks_dev.localcloud.rds import PG_BIN
from airtasks_dev.localcloud.registry import save_load
from airtasks_dev.localcloud.runner import NodeRunner
from tests.e2e.helpers import AMI, REGION, clients, cluster_tags, swarm_nodes

pytestmark = pytest.mark.e2e

# What every script here starts with: IMDSv2 like on EC2, nothing from the environment but the
# endpoint and the keys.
PREAMBLE = """\
#!/bin/bash
set -euo pipefail
IMDS=http://169.254.169.254/latest
TOKEN=$(curl -fsS -X PUT "$IMDS/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
md() { curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/$1"; }
IID=$(md meta-data/instance-id)
IP=$(md meta-data/local-ipv4)
REGION=$(md meta-data/placement/region)
"""


def netns_exists(name_part: str) -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return name_part in out


# ------------------------------------------------------------------------------------------------
def test_instance_boots_from_its_user_data(
    node_runner: NodeRunner, cloud_moto: MotoServer, cluster_name: str
) -> None:
    ec2, ssm, _ = clients(cloud_moto)
    ssm.put_parameter(Name=f"/airtasks/{cluster_name}/probe", Value="probe-value", Type="SecureString")
    script = PREAMBLE + textwrap.dedent(f"""\
        echo "airtasks-boot: instance=$IID ip=$IP region=$REGION hostname=$(hostname)"
        curl -s -o /dev/null -w 'airtasks-boot: imdsv1=%{{http_code}}\\n' "$IMDS/meta-data/instance-id"
        DOC=$(md dynamic/instance-identity/document)
        [[ $DOC == *"$IID"* && $DOC == *"$IP"* ]]
        echo "written by $IID" >/etc/airtasks-e2e-{cluster_name}
        VALUE=$(aws ssm get-parameter --region "$REGION" --name /airtasks/{cluster_name}/probe \\
          --with-decryption --query Parameter.Value --output text)
        [ "$VALUE" = probe-value ] && echo "airtasks-boot: ssm read ok"
        aws ssm put-parameter --region "$REGION" --name /airtasks/{cluster_name}/seen-by \\
          --type String --value "$IID@$(hostname)@$IP" --overwrite >/dev/null
        docker info --format 'airtasks-boot: docker {{{{.Name}}}} {{{{.Swarm.LocalNodeState}}}}'
        """)
    reservation = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        UserData=script,
        TagSpecifications=cluster_tags(cluster_name, "worker"),
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
    )
    iid = reservation["Instances"][0]["InstanceId"]

    node = node_runner.wait_booted(iid, timeout=90)
    log = node.boot_log.read_text()
    assert node.timings.exit_code == 0, node_runner.describe()
    assert f"airtasks-boot: instance={iid} ip={node.address} region={REGION} hostname={iid}" in log
    assert "airtasks-boot: imdsv1=401" in log  # IMDSv2 only, as the modules configure it
    assert "airtasks-boot: ssm read ok" in log
    assert "probe-value" not in log
    assert f"airtasks-boot: docker {iid} inactive" in log
    seen = ssm.get_parameter(Name=f"/airtasks/{cluster_name}/seen-by")["Parameter"]["Value"]
    assert seen == f"{iid}@{iid}@{node.address}"
    # The node's own filesystem view: the script's writes never reach the host.
    assert node.run(["cat", "/etc/hostname"]).stdout.strip() == iid
    assert node.run(["cat", f"/etc/airtasks-e2e-{cluster_name}"]).stdout.strip() == f"written by {iid}"
    assert not Path(f"/etc/airtasks-e2e-{cluster_name}").exists()

    ec2.terminate_instances(InstanceIds=[iid])
    node_runner.wait(lambda: node.timings.stopped is not None, 30, f"{iid} to stop")
    assert not netns_exists(iid)
    assert cgroups.pids(node.network.run_id, iid) == []
    assert (node.workdir / "docker.log").exists()  # logs outlive the node


# ------------------------------------------------------------------------------------------------
MANAGER_SCRIPT = PREAMBLE + textwrap.dedent("""\
    hostnamectl set-hostname "$IID"
    echo '{"labels": ["airtasks.role=manager", "airtasks.cluster=@CLUSTER@"]}' >/etc/docker/daemon.json
    systemctl restart docker
    docker swarm init --advertise-addr "$IP" >/dev/null
    put() { aws ssm put-parameter --region "$REGION" --overwrite --name "/airtasks/@CLUSTER@/swarm/$@"; }
    put worker-token --type SecureString --value "$(docker swarm join-token -q worker)" >/dev/null
    put manager-address --type String --value "$IP:2377" >/dev/null
    echo "airtasks-boot: manager ready at $IP"
    """)

WORKER_SCRIPT = PREAMBLE + textwrap.dedent("""\
    hostnamectl set-hostname "$IID"
    cat >/etc/docker/daemon.json <<EOF
    {"labels": ["airtasks.role=worker", "airtasks.queue=default", "airtasks.cluster=@CLUSTER@"]}
    EOF
    systemctl restart docker
    param() { aws ssm get-parameter --region "$REGION" --name "/airtasks/@CLUSTER@/swarm/$1" \\
      --with-decryption --query Parameter.Value --output text 2>/dev/null; }
    for try in $(seq 60); do
      if TOKEN=$(param worker-token) && ADDRESS=$(param manager-address); then break; fi
      echo "airtasks-boot: no join token yet (try $try), waiting"
      sleep 1
    done
    docker swarm join --token "$TOKEN" --advertise-addr "$IP" "$ADDRESS"
    echo "airtasks-boot: joined $ADDRESS"
    """)


def test_workers_join_a_manager_node_and_run_an_overlay_service(
    node_runner: NodeRunner, cloud_moto: MotoServer, cluster_name: str, e2e_image_ref: str
) -> None:
    ec2, _, autoscaling = clients(cloud_moto)
    # Workers first, from an autoscaling group whose launch template carries gzipped user data:
    # they boot before the manager exists and wait for the token in SSM.
    worker_data = gzip.compress(WORKER_SCRIPT.replace("@CLUSTER@", cluster_name).encode())
    ec2.create_launch_template(
        LaunchTemplateName=f"airtasks-{cluster_name}-default",
        LaunchTemplateData={
            "ImageId": AMI,
            "InstanceType": "t3.medium",
            "UserData": base64.b64encode(worker_data).decode(),
            "MetadataOptions": {"HttpTokens": "required"},
        },
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=f"airtasks-{cluster_name}-default",
        LaunchTemplate={"LaunchTemplateName": f"airtasks-{cluster_name}-default", "Version": "$Latest"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        AvailabilityZones=[f"{REGION}a", f"{REGION}b"],
        Tags=[
            {"Key": "airtasks:cluster", "Value": cluster_name, "PropagateAtLaunch": True},
            {"Key": "airtasks:queue", "Value": "default", "PropagateAtLaunch": True},
            {"Key": "airtasks:role", "Value": "worker", "PropagateAtLaunch": True},
        ],
    )
    manager_id = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        UserData=MANAGER_SCRIPT.replace("@CLUSTER@", cluster_name),
        TagSpecifications=cluster_tags(cluster_name, "manager"),
        # As modules/aws/swarm-manager: the scaler, in a container, needs an IMDSv2 token.
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
    )["Instances"][0]["InstanceId"]
    group = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"airtasks-{cluster_name}-default"]
    )
    workers = sorted(i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"])
    assert len(workers) == 2

    manager = node_runner.wait_booted(manager_id, timeout=90)
    assert manager.timings.exit_code == 0, node_runner.describe()
    ready_at: dict[str, float] = {}

    def all_ready() -> bool:
        for hostname, attrs in swarm_nodes(manager).items():
            if attrs["Status"]["State"] == "ready":
                ready_at.setdefault(hostname, time.monotonic())
        return all(w in ready_at for w in workers)

    node_runner.wait(all_ready, 120, "both workers Ready in the Swarm")
    nodes = swarm_nodes(manager)
    assert set(nodes) == {manager_id, *workers}
    assert nodes[manager_id]["Spec"]["Role"] == "manager"
    for worker in workers:
        assert nodes[worker]["Spec"]["Role"] == "worker"
        labels = nodes[worker]["Description"]["Engine"]["Labels"]
        assert labels == {
            "airtasks.role": "worker",
            "airtasks.queue": "default",
            "airtasks.cluster": cluster_name,
        }
        node = node_runner.wait_booted(worker, timeout=30)
        assert node.timings.exit_code == 0
        assert node.hostname() == worker
        assert nodes[worker]["Status"]["Addr"] == node.address
    for worker in workers:
        t = node_runner.node(worker).timings
        assert t.seen is not None
        print(f"{worker}: running -> Swarm Ready {ready_at[worker] - t.seen:.1f}s; boot {t.since_seen()}")

    # An overlay service across both workers, its image pulled from the run's registry. Created with
    # the docker CLI on the manager node, as a boot script would: it pins the registry's digest.
    server, client = workers
    manager.run(["docker", "network", "create", "--driver", "overlay", "--attachable", "e2e-net"])
    # dnsrr: this kernel has no IPVS, so Swarm's virtual IPs do not route (tasks.<service> does).
    common = ["--detach", "--network", "e2e-net", "--endpoint-mode", "dnsrr"]
    server_cmd = 'while :; do echo "hello from $(hostname)" | nc -l -N -p 8000; done'
    client_cmd = "until nc -w 2 tasks.srv 8000 | grep hello; do sleep 0.5; done; sleep infinity"
    # The server also publishes its port on its node (host mode: no routing mesh without IPVS).
    published = ["--publish", "mode=host,published=8000,target=8000"]
    for name, on, constraint, cmd, extra in (
        ("srv", server, "engine.labels.airtasks.queue == default", server_cmd, published),
        ("cli", client, "engine.labels.airtasks.role == worker", client_cmd, []),
    ):
        placement = ["--constraint", f"node.hostname == {on}", "--constraint", constraint, *extra]
        service = ["docker", "service", "create", *common, "--name", name, *placement]
        manager.run([*service, e2e_image_ref, "bash", "-c", cmd])
    with manager.client() as docker_client:
        image = docker_client.services.get("cli").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.startswith(e2e_image_ref + "@sha256:")  # the manager resolved the digest in the registry

    def greeted() -> bool:
        with node_runner.node(client).client(timeout=10) as worker_client:
            for container in worker_client.containers.list(
                filters={"label": "com.docker.swarm.service.name=cli"}
            ):
                if b"hello from" in container.logs():
                    return True
        return False

    node_runner.wait(greeted, 90, "the client task on one worker to reach the server task on the other")

    def answers_on_node_address() -> bool:
        try:
            with socket.create_connection((node_runner.node(server).address, 8000), timeout=2) as conn:
                return b"hello from" in conn.recv(100)
        except OSError:
            return False

    node_runner.wait(answers_on_node_address, 30, "the published port on the server node's address")

    # A container on a node reaches moto on the bridge (as the scaler on the manager will; the
    # node's dockerd masquerades it) and asks IMDS for a token: it gets one on the manager (hop
    # limit 2) but not on a worker (the launch template's default hop limit 1), as on EC2.
    probe = (
        f"exec 3<>/dev/tcp/{node_runner.network.gateway}/{cloud_moto.port} && echo moto-ok; "
        "exec 4<>/dev/tcp/169.254.169.254/80 && echo imds-ok; "
        "printf 'PUT /latest/api/token HTTP/1.0\\r\\n%s\\r\\n\\r\\n' "
        "'X-aws-ec2-metadata-token-ttl-seconds: 60' >&4; "
        "head -n 1 <&4 | grep -q ' 200 ' && echo token-ok || echo no-token"
    )
    container = [
        "docker",
        "run",
        "--rm",
        "--network",
        "e2e-net",
        e2e_image_ref,
        "timeout",
        "10",
        "bash",
        "-c",
    ]
    assert node_runner.node(server).run([*container, probe]).stdout.split() == [
        "moto-ok",
        "imds-ok",
        "no-token",
    ]
    assert manager.run([*container, probe]).stdout.split() == ["moto-ok", "imds-ok", "token-ok"]

    # Scale-in the way the scaler does it: terminate exactly that instance, decrementing the group;
    # then scale out by one while the Swarm notices: a worker that boots into a running Swarm.
    group_name = f"airtasks-{cluster_name}-default"
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=client, ShouldDecrementDesiredCapacity=True
    )
    gone = node_runner.node(client)
    node_runner.wait(lambda: gone.timings.stopped is not None, 30, f"{client}'s node to stop")
    stopped = time.monotonic()
    autoscaling.set_desired_capacity(AutoScalingGroupName=group_name, DesiredCapacity=2)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"][
        0
    ]
    (new,) = {i["InstanceId"] for i in group["Instances"]} - {server, client}

    def settled() -> bool:
        nodes = swarm_nodes(manager)
        if nodes.get(new, {}).get("Status", {}).get("State") == "ready":
            ready_at.setdefault(new, time.monotonic())
        if nodes[client]["Status"]["State"] == "down":
            ready_at.setdefault("down", time.monotonic())
        return new in ready_at and "down" in ready_at

    node_runner.wait(settled, 90, f"{client} Down and the new worker {new} Ready")
    seen = node_runner.node(new).timings.seen
    assert seen is not None
    print(f"{client}: node stopped -> Swarm Down {ready_at['down'] - stopped:.1f}s")
    print(f"{new}: scale-out, running -> Swarm Ready {ready_at[new] - seen:.1f}s")
    assert not netns_exists(client)
    assert swarm_nodes(manager)[server]["Status"]["State"] == "ready"


# ------------------------------------------------------------------------------------------------
def test_an_rds_instance_is_a_tls_postgresql_that_a_node_reaches_by_its_endpoint(
    cloud: LocalCloud, node_runner: NodeRunner, cluster_name: str, e2e_image_ref: str
) -> None:
    """What the stack on a manager does with `database.managed`: resolve the endpoint moto reports
    (on the node and in a container, through Docker's DNS), read the RDS-managed secret, and log in
    over TLS; plain text is refused; the instance's deletion ends the server."""
    kw = {"endpoint_url": cloud.moto.url, "region_name": REGION}
    rds, secretsmanager = boto3.client("rds", **kw), boto3.client("secretsmanager", **kw)
    ec2, _, _ = clients(cloud.moto)
    identifier = f"{cluster_name}-db"
    rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        EngineVersion="16",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        StorageEncrypted=True,
        PubliclyAccessible=False,
        MasterUsername="airflow",
        ManageMasterUserPassword=True,
        DBName="airflow",
    )
    (described,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    endpoint, port = described["Endpoint"]["Address"], described["Endpoint"]["Port"]
    served = cloud.rds.wait_served(identifier, timeout=60)
    arn = described["MasterUserSecret"]["SecretArn"]
    secret = json.loads(secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
    assert secret["username"] == "airflow"

    reservation = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        UserData=PREAMBLE + 'echo "airtasks-boot: up"\n',
        TagSpecifications=cluster_tags(cluster_name, "manager"),
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
    )
    iid = reservation["Instances"][0]["InstanceId"]
    node = node_runner.wait_booted(iid, timeout=90)
    try:
        assert node.run(["getent", "hosts", endpoint]).stdout.split()[0] == served.address
        psql = [str(PG_BIN / "psql"), "-XAt", "-c"]
        who = "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        dsn = f"host={endpoint} port={port} dbname=airflow user=airflow"
        login = {"PGPASSWORD": secret["password"], "PGCONNECT_TIMEOUT": "10"}
        out = node.run([*psql, who, f"{dsn} sslmode=require"], env=login).stdout.strip()
        assert out == "airflow true"
        plain = node.run([*psql, who, f"{dsn} sslmode=disable"], env=login, check=False)
        assert plain.returncode != 0
        assert "no pg_hba.conf entry" in plain.stderr
        # The stack's services resolve names through Docker's embedded DNS, which forwards to the
        # node's resolver.
        node.run(["docker", "network", "create", "rds-probe"])
        probe = ["docker", "run", "--rm", "--network", "rds-probe", e2e_image_ref, "getent", "hosts"]
        assert node.run([*probe, endpoint], timeout=180).stdout.split()[0] == served.address

        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
        node_runner.wait(lambda: identifier not in cloud.rds.served, 30, f"{identifier}'s server to stop")
        assert node.run(["getent", "hosts", endpoint], check=False).returncode != 0
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
    assert cloud.rds.errors == []


# ------------------------------------------------------------------------------------------------
def leftovers(run_id: str) -> list[str]:
    """Anything of a run still on the host: namespaces, links, rules, cgroups, processes, state."""
    tag = f"{PREFIX}{run_id}-"

    def lines(*cmd: str) -> list[str]:
        out = subprocess.run(list(cmd), capture_output=True, text=True, check=False).stdout
        return [line for line in out.splitlines() if tag in line]

    found = lines("ip", "netns", "list") + lines("ip", "-o", "link")
    for chain in ("DOCKER-USER", "FORWARD", "OUTPUT"):
        rules = subprocess.run(["iptables", "-S", chain], capture_output=True, text=True, check=False).stdout
        found += [rule for rule in rules.splitlines() if f"airtasks-localcloud:{run_id}" in rule]
    found += [str(p) for p in cgroups.pids(run_id)]
    found += [str(r) for r in cgroups.runs() if r == run_id]
    found += [str(p) for p in Path("/run/airtasks-localcloud").glob(f"{run_id}.*")]
    return found


CRASHING_OWNER = """
import sys, time
from pathlib import Path
from airtasks_dev.localcloud.network import Network
from airtasks_dev.localcloud.node import Instance, Node
net = Network.create()
node = Node(net, Instance("i-0000000000000dead"), Path(sys.argv[1]))
node.start()
print(net.run_id, node.instance_id, flush=True)
time.sleep(600)
"""


def test_teardown_and_crash_cleanup_leave_nothing_behind(
    cloud_network: Network, host_dockerd: None, tmp_path: Path
) -> None:
    # Normal teardown: a second run with a node whose dockerd runs.
    with Network.create() as other:
        # The nodes' containers, all under one cgroup, weigh as a few host processes, not as one.
        weight = cgroups.NODES_CPU_WEIGHT
        assert cgroups.cpu_weights() in ({"cpu.shares": 1024 * weight}, {"cpu.weight": 100 * weight})
        node = Node(other, Instance("i-0000000000000c1ea"), tmp_path / "clean")
        node.start()
        assert node.swarm_state() == "inactive"
        # The other way to bring an image to a node (the registry is the one the tests use).
        image = tiny_image()
        save_load(node, image)
        with node.client() as client:
            assert image in [tag for found in client.images.list() for tag in found.tags]
        run_id = other.run_id
        assert leftovers(run_id)
    assert leftovers(run_id) == []
    assert not (tmp_path / "clean" / "disk").exists()

    # A crashed owner: SIGKILL the process that made a run; the next cleanup removes all of it.
    repo = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen(
        [sys.executable, "-c", CRASHING_OWNER, str(tmp_path / "crash")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "dev"), str(repo / "glue")])},
    )
    assert owner.stdout is not None
    line = owner.stdout.readline().split()
    assert len(line) == 2, "the crashing owner did not start its node"
    crashed_run, iid = line
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    assert leftovers(crashed_run)  # the node's dockerd, namespace, bridge are still there
    assert crashed_run in cleanup_leftovers()
    assert leftovers(crashed_run) == []
    assert not (tmp_path / "crash" / "disk").exists()
    assert cloud_network.run_id not in cleanup_leftovers()  # a live run is never touched
    assert not netns_exists(iid)
