"""The local cloud's network: one test bridge, a network namespace + veth + address per node.

Everything a run creates is named `at-<run>-...` (bridge `at-<run>-br`, veths `at-<run>-v<octet>`,
namespaces `at-<run>-<instance id>`) and recorded in /run/airtasks-localcloud/<run>.json together
with the PID of the process that owns the run. `cleanup_leftovers()` removes every run whose owner
is gone (a crashed test session) and anything named `at-<run>-` that no live run owns: namespaces,
veths, the bridge, the iptables rule, processes (by cgroup) and the directories the run registered.

Namespaces get no default route: nothing inside can reach beyond the bridge. The bridge address
hosts the run's services (moto, the registry); nodes reach each other across the bridge, which
needs one rule because the host dockerd sets the FORWARD policy to DROP:
`iptables -I DOCKER-USER -i <bridge> -o <bridge> -j ACCEPT`. Two more make sure nothing leaves the
bridge for elsewhere: nothing is forwarded from it to another interface, and the bridge address
never answers an address off the bridge (a container's unmasqueraded address would otherwise be
answered through the host's default route). Every rule carries the comment
`airtasks-localcloud:<run>`, which is how teardown and leftover cleanup find them.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airtasks_dev.localcloud import cgroups
from airtasks_dev.localcloud._sys import LocalCloudError, alive, process_start_time, require_root, run

PREFIX = "at-"
STATE_ROOT = Path("/run/airtasks-localcloud")
DEFAULT_SUPERNET = "10.213.0.0/16"
FIRST_HOST = 10  # node addresses start at .10; .1 is the bridge (services)
IMDS_ADDRESS = "169.254.169.254"
# The IMDS stand-in listens on IMDS_ADDRESS:IMDS_PORT and port 80 of IMDS_ADDRESS is DNATed there,
# first thing in the node's nat table: on EC2 nothing on the instance holds port 80 (a published
# port 80 must bind), and docker's DNAT of published ports (destination type LOCAL, which the
# stand-in's address is here and not on EC2) must never take IMDS traffic.
IMDS_PORT = 18775
RULE_COMMENT = "airtasks-localcloud"


@dataclass(frozen=True)
class NodeLink:
    """A node's place on the network: its namespace, the host end of its veth, its address."""

    netns: str
    veth: str
    address: str

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"


def _bridge_name(run_id: str) -> str:
    return f"{PREFIX}{run_id}-br"


def bridge_mac(gateway: str) -> str:
    """The bridge's own MAC address, set when it is made: locally administered, and derived from
    its address, so unique among runs. A bridge without one takes the lowest MAC of its ports and
    changes it when a node comes or goes; the other nodes, which keep the old one for the bridge
    address, then reach none of the run's services (moto, registry, DNS, RDS) for 15-45 s, until
    their ARP entry expires. A cloud's gateway never does that."""
    octets = ipaddress.IPv4Address(gateway).packed
    return ":".join(f"{b:02x}" for b in (0x02, 0x00, *octets))


def _run_of(name: str) -> str | None:
    """The run id in a name like `at-3f2a-br`, None for names that are not ours."""
    if not name.startswith(PREFIX):
        return None
    rest = name[len(PREFIX) :].split("-", 1)
    return rest[0] if len(rest) == 2 and len(rest[0]) == 4 else None


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for line in run(["ip", "-4", "-o", "addr"]).stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            used.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    for line in run(["ip", "-4", "route"]).stdout.splitlines():
        dest = line.split()[0]
        if dest != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(dest, strict=False))
    return used


def _pick_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    supernet = ipaddress.IPv4Network(DEFAULT_SUPERNET)
    for candidate in supernet.subnets(new_prefix=24):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise LocalCloudError(f"no free /24 left in {DEFAULT_SUPERNET} for a local cloud bridge")


def _forward_chain() -> str:
    """DOCKER-USER when the host dockerd made it (it sets FORWARD to DROP), else FORWARD itself."""
    return "DOCKER-USER" if run(["iptables", "-S", "DOCKER-USER"], check=False).returncode == 0 else "FORWARD"


def _rules_for(network: Network) -> list[tuple[str, list[str]]]:
    """(chain, rule) of a run: nodes talk across the bridge; nothing from it goes anywhere else."""
    bridge, tag = network.bridge, ["-m", "comment", "--comment", f"{RULE_COMMENT}:{network.run_id}"]
    return [
        (network.chain, ["-i", bridge, "-o", bridge, *tag, "-j", "ACCEPT"]),
        (network.chain, ["-i", bridge, "!", "-o", bridge, *tag, "-j", "DROP"]),
        # The bridge address answers only addresses on the bridge (never via the host's default route).
        ("OUTPUT", ["-s", f"{network.gateway}/32", "!", "-d", str(network.subnet), *tag, "-j", "DROP"]),
    ]


@dataclass
class Network:
    """One run's bridge and the namespaces on it. Create with `Network.create()`, end with `destroy()`."""

    run_id: str
    subnet: ipaddress.IPv4Network
    state_file: Path
    chain: str
    _used: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _destroyed: bool = False

    # ---------------------------------------------------------------- create / destroy
    @classmethod
    def create(cls, subnet: str | None = None) -> Network:
        """Clean up leftovers of crashed runs, then make a bridge on a free /24 with the forward rule."""
        require_root()
        cleanup_leftovers()
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        with open(STATE_ROOT / ".lock", "a+") as lock:  # two sessions never pick the same subnet
            fcntl.flock(lock, fcntl.LOCK_EX)
            return cls._create_locked(subnet)

    @classmethod
    def _create_locked(cls, subnet: str | None) -> Network:
        while True:
            run_id = secrets.token_hex(2)
            state_file = STATE_ROOT / f"{run_id}.json"
            if not state_file.exists() and run_id not in cgroups.runs():
                break
        net = ipaddress.ip_network(subnet) if subnet else _pick_subnet()
        if not isinstance(net, ipaddress.IPv4Network):
            raise LocalCloudError(f"subnet {subnet} must be IPv4")
        network = cls(run_id=run_id, subnet=net, state_file=state_file, chain=_forward_chain())
        network._save(dirs=[])  # first, so a crash from here on is cleaned up
        try:
            bridge = network.bridge
            run(["ip", "link", "add", bridge, "address", bridge_mac(network.gateway), "type", "bridge"])
            run(["ip", "addr", "add", f"{network.gateway}/{net.prefixlen}", "dev", bridge])
            run(["ip", "link", "set", bridge, "up"])
            for chain, rule in _rules_for(network):
                run(["iptables", "-I", chain, *rule])
            cgroups.create(run_id, "services")
            cgroups.weigh_run(run_id)
        except BaseException:
            network.destroy()
            raise
        return network

    def destroy(self) -> None:
        """Remove everything of this run: processes, namespaces, veths, bridge, rule, dirs, state."""
        if self._destroyed:
            return
        teardown_run(self.run_id)
        self._destroyed = True

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # ---------------------------------------------------------------- properties
    @property
    def bridge(self) -> str:
        return _bridge_name(self.run_id)

    @property
    def gateway(self) -> str:
        """The bridge's address: where the run's services (moto, registry) listen."""
        return str(self.subnet.network_address + 1)

    # ---------------------------------------------------------------- state
    def _save(self, dirs: list[str]) -> None:
        pid = os.getpid()
        state = {
            "run_id": self.run_id,
            "owner_pid": pid,
            "owner_start": process_start_time(pid),
            "subnet": str(self.subnet),
            "chain": self.chain,
            "dirs": dirs,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    def register_dir(self, path: Path) -> None:
        """Remove `path` when this run is torn down (also by a later session's leftover cleanup)."""
        with self._lock:
            state = _read_state(self.state_file) or {}
            dirs = [*state.get("dirs", []), str(path)]
            self._save(dirs=dirs)

    def adopt(self, pid: int) -> None:
        """Track a service process (moto, registry) so that teardown and crash cleanup end it."""
        cgroups.add(pid, self.run_id, "services")

    # ---------------------------------------------------------------- nodes
    def allocate(self) -> str:
        """A free node address on the bridge (.10 upwards)."""
        with self._lock:
            for host in list(self.subnet.hosts())[FIRST_HOST - 1 :]:
                address = str(host)
                if address not in self._used:
                    self._used.add(address)
                    return address
        raise LocalCloudError(f"no free address left in {self.subnet}")

    def release(self, address: str) -> None:
        with self._lock:
            self._used.discard(address)

    # ---------------------------------------------------------------- service addresses
    def add_service_address(self) -> str:
        """A free address of the subnet added to the bridge itself (a /32), for a service that needs
        an address of its own, such as an emulated RDS instance on port 5432. It goes with the bridge
        at teardown; its OUTPUT rule (the bridge address's, for this address) goes by its comment."""
        address = self.allocate()
        try:
            run(["ip", "addr", "add", f"{address}/32", "dev", self.bridge])
            run(["iptables", "-I", "OUTPUT", *self._answer_only_bridge(address)])
        except BaseException:
            self.remove_service_address(address)
            raise
        return address

    def remove_service_address(self, address: str) -> None:
        run(["iptables", "-D", "OUTPUT", *self._answer_only_bridge(address)], check=False)
        run(["ip", "addr", "del", f"{address}/32", "dev", self.bridge], check=False)
        self.release(address)

    def _answer_only_bridge(self, address: str) -> list[str]:
        tag = ["-m", "comment", "--comment", f"{RULE_COMMENT}:{self.run_id}"]
        return ["-s", f"{address}/32", "!", "-d", str(self.subnet), *tag, "-j", "DROP"]

    def add_node(self, name: str, address: str) -> NodeLink:
        """A namespace `at-<run>-<name>` with eth0 = address on the bridge, lo up, the IMDS address on lo."""
        octet = address.rsplit(".", 1)[1]
        link = NodeLink(
            netns=f"{PREFIX}{self.run_id}-{name}", veth=f"{PREFIX}{self.run_id}-v{octet}", address=address
        )
        run(["ip", "netns", "add", link.netns])
        try:
            run(["ip", "link", "add", link.veth, "type", "veth", "peer", "name", "eth0", "netns", link.netns])
            run(["ip", "link", "set", link.veth, "master", self.bridge, "up"])
            ns = ["ip", "-n", link.netns]
            run([*ns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0"])
            run([*ns, "link", "set", "eth0", "up"])
            run([*ns, "link", "set", "lo", "up"])
            run([*ns, "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo"])
            imds = [f"{IMDS_ADDRESS}/32", "-p", "tcp", "--dport", "80", "-j", "DNAT"]
            for chain in ("PREROUTING", "OUTPUT"):
                nat = ["ip", "netns", "exec", link.netns, "iptables", "-t", "nat", "-I", chain, "1", "-d"]
                run([*nat, *imds, "--to-destination", f"{IMDS_ADDRESS}:{IMDS_PORT}"])
        except BaseException:
            self.remove_node(link)
            raise
        return link

    def remove_node(self, link: NodeLink) -> None:
        """Delete the namespace (its eth0 goes with it, and so does the host end of the veth)."""
        run(["ip", "netns", "del", link.netns], check=False)
        run(["ip", "link", "del", link.veth], check=False)
        self.release(link.address)


# -------------------------------------------------------------------- teardown and leftovers
def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _netns_names() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _link_names() -> list[str]:
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def _rules() -> list[tuple[str, list[str], str]]:
    """(chain, rule args, run id) of every iptables rule a local-cloud run made (by its comment)."""
    found = []
    for chain in ("DOCKER-USER", "FORWARD", "OUTPUT"):
        out = run(["iptables", "-S", chain], check=False).stdout
        for line in out.splitlines():
            args = shlex.split(line)  # iptables -S quotes the comment
            if args[:1] == ["-A"] and "--comment" in args:
                comment = args[args.index("--comment") + 1]
                if comment.startswith(f"{RULE_COMMENT}:"):
                    found.append((chain, args[2:], comment.split(":", 1)[1]))
    return found


def teardown_run(run_id: str) -> None:
    """Remove everything named or recorded for one run, whether its owner is alive or not."""
    state_file = STATE_ROOT / f"{run_id}.json"
    state = _read_state(state_file) or {}
    cgroups.kill_all(run_id)
    tag = f"{PREFIX}{run_id}-"
    for ns in _netns_names():
        if ns.startswith(tag):
            run(["ip", "netns", "del", ns], check=False)
    for link in _link_names():
        if link.startswith(tag) and link != _bridge_name(run_id):
            run(["ip", "link", "del", link], check=False)
    for chain, args, rule_run in _rules():
        if rule_run == run_id:
            run(["iptables", "-D", chain, *args], check=False)
    if _bridge_name(run_id) in _link_names():
        run(["ip", "link", "del", _bridge_name(run_id)], check=False)
    cgroups.remove(run_id)
    cgroups.remove_top()
    for directory in state.get("dirs", []):
        shutil.rmtree(directory, ignore_errors=True)
    state_file.unlink(missing_ok=True)


def _live_runs() -> set[str]:
    live = set()
    if STATE_ROOT.is_dir():
        for path in STATE_ROOT.glob("*.json"):
            state = _read_state(path)
            if state and alive(int(state["owner_pid"]), state.get("owner_start")):
                live.add(path.stem)
    return live


def cleanup_leftovers() -> list[str]:
    """Tear down every run whose owner process is gone, and orphans named `at-<run>-`; returns run ids."""
    require_root()
    live = _live_runs()
    dead: set[str] = set()
    if STATE_ROOT.is_dir():
        dead.update(p.stem for p in STATE_ROOT.glob("*.json") if p.stem not in live)
    for name in [*_netns_names(), *_link_names()]:
        run_id = _run_of(name)
        if run_id and run_id not in live:
            dead.add(run_id)
    dead.update(rule_run for _, _, rule_run in _rules() if rule_run not in live)
    dead.update(r for r in cgroups.runs() if r not in live)
    for run_id in sorted(dead):
        teardown_run(run_id)
    return sorted(dead)
