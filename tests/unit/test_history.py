"""The decision history ring: what a pass appends (decisions when they change, samples at most
every sample_seconds), its bounds (age, count), its stores, and how the scaler writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airtasks.config import HistoryConfig, parse_config
from airtasks.errors import ConfigError, SourceReadError
from airtasks.scaling.scaler import Scaler
from airtasks.state.history import (
    History,
    HistoryEntry,
    HistoryRecorder,
    HistoryStore,
    SwarmNodeRecord,
    add,
    decode,
    encode,
    prune,
)
from airtasks.state.stores import InProcessText
from airtasks.wiring import Clients
from tests.unit.fakes import FakeAirflow, FakeBackend, FakeControl, FakeRabbit

CFG = HistoryConfig(sample_seconds=60, max_age_seconds=3600, max_entries=50)


def entry(t: float, queue: str = "default", **kw: object) -> HistoryEntry:
    base: dict[str, object] = {
        "action": "none",
        "reason": "size fits the load",
        "load": 3,
        "loads": {"airflow": 3},
        "current": 1,
        "want": 1,
        "desired": 1,
    }
    base.update(kw)
    return HistoryEntry(t=t, queue=queue, kind="decision", **base)  # type: ignore[arg-type]


def test_a_decision_when_it_changes_a_sample_at_most_every_sample_seconds() -> None:
    h, changed = add(History(), [entry(0)], 0, CFG)
    assert changed
    assert [e.kind for e in h.entries("default")] == ["decision"]
    # Same decision, load and reason wording changed: nothing within the minute, then one sample.
    for t in range(5, 60, 5):
        h2, changed = add(h, [entry(t, load=t, reason=f"waited {t}s")], t, CFG)
        assert not changed
        assert h2 is h
    h, changed = add(h, [entry(60, load=7)], 60, CFG)
    assert changed
    assert [(e.kind, e.load) for e in h.entries("default")] == [("decision", 3), ("sample", 7)]
    # A new decision is recorded at once, and so is every action, even a repeated one.
    h, _ = add(h, [entry(61, action="scale_out", want=3, desired=3, reason="load 9 needs 3")], 61, CFG)
    h, changed = add(h, [entry(62, action="scale_out", want=3, desired=3, current=3)], 62, CFG)
    assert changed
    assert [e.kind for e in h.entries("default")][-2:] == ["decision", "decision"]
    assert h.last("default").reason == "size fits the load"  # type: ignore[union-attr]
    assert h.written_at == 62


def test_a_restart_is_recorded_as_a_decision_of_its_own() -> None:
    h, _ = add(History(), [entry(0)], 0, CFG)
    # Same sizes as the last decision: only the restart is new, and it is kept at once.
    restart = entry(5, reason="i-0abc: restarted 1 task(s) elsewhere", restarted=("etl.load.r1.-1",))
    h, changed = add(h, [restart], 5, CFG)
    assert changed
    last = h.last("default")
    assert last is not None
    assert last.restarted == ("etl.load.r1.-1",)
    assert last.acted
    assert decode(encode(h)).last("default") == last


def test_pruned_by_age_then_by_count_per_queue() -> None:
    entries = {"a": tuple(entry(t, "a") for t in range(0, 5000, 10)), "b": (entry(100, "b"),)}
    h = prune(History(entries), 5000, CFG)
    assert set(h.queues) == {"a"}  # b's only entry is older than an hour
    a = h.entries("a")
    assert len(a) == CFG.max_entries
    assert a[-1].t == 4990
    assert a[0].t == 4990 - 10 * (CFG.max_entries - 1)


def test_the_swarm_node_list_is_kept_when_it_changes() -> None:
    nodes = [
        SwarmNodeRecord("i-1", "worker", "ready", "active", "default"),
        SwarmNodeRecord("m", "manager", "ready", "active"),
    ]
    h, changed = add(History(), [], 10, CFG, nodes)
    assert changed
    assert h.swarm is not None
    assert [n.hostname for n in h.swarm.nodes] == ["m", "i-1"]  # manager first
    assert add(h, [], 20, CFG, list(reversed(nodes))) == (h, False)
    down = [SwarmNodeRecord("i-1", "worker", "down", "active", "default"), nodes[1]]
    h, changed = add(h, [], 30, CFG, down)
    assert changed
    assert h.swarm is not None
    assert h.swarm.t == 30


def test_encode_decode_round_trip_and_damage_tolerated() -> None:
    h, _ = add(
        History(),
        [entry(1, removed=("i-1",), loads={"airflow": 2, "rabbitmq": None})],
        1,
        CFG,
        [SwarmNodeRecord("i-1", "worker", "ready", "drain", "default")],
    )
    text = encode(h)
    assert decode(text) == h
    assert json.loads(text)["version"] == 1
    assert decode(None) == History()
    assert decode("not json") == History()
    assert decode('["a list"]') == History()
    damaged = json.loads(text)
    damaged["queues"]["default"].append({"t": "yesterday", "action": "scale_out"})
    damaged["queues"]["default"].append({"t": 2, "action": "explode"})
    damaged["queues"]["other"] = "not a list"
    damaged["swarm"]["nodes"].append({"no": "hostname"})
    assert decode(json.dumps(damaged)) == h


def test_file_store_is_read_back_by_a_fresh_store(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.json"
    assert HistoryStore.file(path).load() == History()
    recorder = HistoryRecorder(HistoryStore.file(path), CFG)
    report = make_scaler(HistoryStore.in_process()).run_pass().queues
    assert recorder.record(report, 1000.0)
    again = HistoryStore.file(path).load()  # another process, after a restart
    assert [e.action for e in again.entries("default")] == ["scale_out"]


class BrokenStore(HistoryStore):
    def load(self) -> History:
        raise SourceReadError(
            "airflow: GET /api/v2/variables/airtasks_scaler_history: HTTP 500 after 3 tries"
        )


def make_scaler(store: HistoryStore, clock: list[float] | None = None) -> Scaler:
    config = parse_config(
        {
            "backend": "aws",
            "region": "us-east-1",
            "stabilization_seconds": 0,
            "idle_seconds": 0,
            "sources": {"airflow": {"url": "http://127.0.0.1:1"}},
            "history": {"store": "none", "sample_seconds": 60},
            "queues": {"default": {"group": "g", "max_size": 10, "slots_per_node": 4}},
        }
    )
    airflow = FakeAirflow(queued={"default": 9})
    now = clock or [1000.0]
    clients = Clients(
        FakeBackend(),
        airflow=airflow,  # type: ignore[arg-type]
        rabbitmq=FakeRabbit(depth={"default": 9}),  # type: ignore[arg-type]
        control=FakeControl(),
        history=store,
    )
    return Scaler(config, clients, clock=lambda: now[0])


def test_the_scaler_writes_on_change_and_once_a_minute_otherwise() -> None:
    store = HistoryStore.in_process()
    clock = [1000.0]
    scaler = make_scaler(store, clock)
    for _ in range(60):  # five minutes of 5 s passes
        scaler.run_pass()
        clock[0] += 5
    h = store.load()
    entries = h.entries("default")
    assert entries[0].kind == "decision"
    assert (entries[0].action, entries[0].current, entries[0].desired) == ("scale_out", 0, 3)
    assert entries[0].reason == "load 9 needs 3 node(s) of 4 slots"
    assert entries[0].loads == {"airflow": 9, "rabbitmq": 9}
    assert entries[1].kind == "decision"  # current 0 -> 3: a new decision ("none")
    assert [e.kind for e in entries[2:]] == ["sample"] * (len(entries) - 2)
    assert 5 <= len(entries) <= 7
    assert store.writes == len(entries)  # one write per appended entry, never a write per pass


def test_dry_runs_are_not_recorded_and_store_errors_never_stop_a_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = HistoryStore.in_process()
    scaler = make_scaler(store)
    scaler.run_pass(dry_run=True)
    assert store.writes == 0
    broken = BrokenStore(InProcessText())
    scaler = make_scaler(broken)
    report = scaler.run_pass()
    assert report.queues[0].action == "scale_out"
    assert "history: not recorded (airflow: GET /api/v2/variables/airtasks_scaler_history" in caplog.text
    assert broken.writes == 0


class SlowStore(HistoryStore):
    """A store whose next `failures` writes time out, as an Airflow too busy to answer."""

    def __init__(self, failures: int) -> None:
        super().__init__(InProcessText())
        self.failures = failures

    def save(self, value: History) -> None:
        if self.failures:
            self.failures -= 1
            raise SourceReadError("airflow: PATCH /api/v2/variables/airtasks_scaler_history: timed out")
        super().save(value)


def test_a_decision_whose_write_failed_goes_in_with_the_next_pass() -> None:
    store = SlowStore(failures=1)
    clock = [1000.0]
    scaler = make_scaler(store, clock)
    scaler.run_pass()  # scales out; the write times out
    assert store.writes == 0
    assert scaler.history is not None
    assert [e.action for e in scaler.history.pending] == ["scale_out"]
    clock[0] += 5
    scaler.run_pass()  # the group is at 3 now: a calm pass, written with the scale-out before it
    entries = store.load().entries("default")
    assert [(e.t, e.action, e.desired) for e in entries] == [(1000.0, "scale_out", 3), (1005.0, "none", 3)]
    assert entries[0].reason == "load 9 needs 3 node(s) of 4 slots"
    assert scaler.history.pending == ()


def test_entries_kept_from_a_failed_pass_are_written_at_close() -> None:
    store = SlowStore(failures=1)
    scaler = make_scaler(store)
    scaler.run_pass()
    scaler.close()  # the scaler task's minute ends after the failed write
    assert [e.action for e in store.load().entries("default")] == ["scale_out"]


def test_entries_kept_for_a_store_that_stays_down_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    recorder = HistoryRecorder(SlowStore(failures=10**6), CFG)
    reports = make_scaler(HistoryStore.in_process()).run_pass().queues
    for minute in range(80):  # a due entry (a sample) every pass, more than CFG's 50 per queue
        recorder.record(reports, 1000.0 + 60 * minute)
    assert len(recorder.pending) == 50
    assert (recorder.pending[0].t, recorder.pending[-1].t) == (1000.0 + 60 * 30, 1000.0 + 60 * 79)
    assert "50 entries kept for the next pass; scaling is not affected" in caplog.text


def test_a_pass_that_found_airflow_down_does_not_wait_on_its_variable() -> None:
    store = HistoryStore.in_process()
    store.store.name = "airflow"
    scaler = make_scaler(store)
    assert scaler.clients.airflow is not None
    scaler.clients.airflow.down = True  # type: ignore[attr-defined]
    report = scaler.run_pass()
    assert report.queues[0].action == "hold"
    assert store.writes == 0
    store.store.name = "file"  # elsewhere: the held pass is recorded ("why did it not scale?")
    scaler.run_pass()
    assert [e.action for e in store.load().entries("default")] == ["hold"]


def test_history_config_defaults_follow_the_sources() -> None:
    base = {
        "backend": "aws",
        "region": "us-east-1",
        "queues": {"default": {"group": "g", "max_size": 1}},
    }
    with_airflow = parse_config({**base, "sources": {"airflow": {"url": "http://a:8080"}}})
    assert with_airflow.history_config.store == "airflow"
    assert with_airflow.history_config.variable == "airtasks_scaler_history"
    rabbit_only = parse_config({**base, "sources": {"rabbitmq": {"url": "http://r:15672"}}})
    assert rabbit_only.history_config.store == "file"
    with pytest.raises(ConfigError, match=r"history\.store .airflow. needs sources\.airflow"):
        parse_config(
            {**base, "sources": {"rabbitmq": {"url": "http://r:15672"}}, "history": {"store": "airflow"}}
        )
