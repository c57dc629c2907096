"""Integration: a deployed federation survives its server, and hostile replies on the wire.

Real processes on 127.0.0.1 only, driven as an operator drives them: ``skydistill server`` (a
TLS SuperLink with node authentication and a ``--database``), keys registered with the
SuperLink, ``skydistill agent`` processes (each a ``flower-supernode``) on their own data, and
``skydistill submit`` (``flwr run``). Everything is stopped by PID.

* The SuperLink and the ServerApp are SIGKILLed while the agents train round 2; the SuperLink is
  started again with the same command, the run is submitted again with ``--resume``, and the
  same agent processes (never restarted) reconnect by themselves and finish it: every round
  once in ``report.json``.
* Three registered fuzzer agents run a test-only ClientApp (tests/deploy/wire_fuzz_app.py) that
  answers each train message with a malformed reply through the real SuperLink and SuperNodes:
  the server counts each by reason (report.json, and its Prometheus exporter) and every round
  goes on with the three honest agents.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flwr.common.constant import HEARTBEAT_DEFAULT_INTERVAL, HEARTBEAT_PATIENCE

from common.config import RunConfig
from common.processes import is_alive, stop_tree
from common.settings import PROJECT_ROOT
from server.certs import make_certs
from simulations.deployment import register_agent, toml_text
from simulations.flower import CONNECTION, flwr, run_status
from simulations.simulate import COMPLETED
from tests.deploy import wire_fuzz_app as fuzz
from tests.deploy.fleet import (
    CLASSES,
    cmdline,
    private_folder,
    quiet_port,
    report_rounds,
    run_cli,
    running,
    start_cli,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

READY = "SuperLink on "  # what `skydistill server` prints once its SuperLink listens
CLIENTAPP_STARTED = "Start `flwr-clientapp` process"  # a SuperNode's line for each message
FUZZERS = [f"{fuzz.PREFIX}{k}" for k in range(fuzz.FUZZERS)]
ROUND_TIMEOUT = 300.0  # generous: a slow machine must not turn slow replies into failures
# Small rounds on the fixture data: what makes a round cheap, not what the rounds learn.
QUICK = {
    "num-clients": 3,
    "fraction-train": 1.0,
    "reference-per-round": 8,
    "teacher-epochs": 1,
    "global-pretrain-epochs": 1,
    "preinstall-epochs": 1,
    "round-timeout": ROUND_TIMEOUT,
}


@dataclass
class Ground:
    """The SuperLink of the deployment, as ``skydistill server`` in its own process."""

    root: Path
    certs: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def home(self) -> Path:
        return self.root / "flwr-home"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """``skydistill server`` with the same arguments every time (as systemd restarts it)."""
        args = ["server", "--host", "127.0.0.1", "--port", str(self.port),
                "--certs", str(self.certs), "--home", str(self.home),
                "--database", str(self.root / "superlink.db")]  # fmt: skip
        self.proc = start_cli(args, self.log, self.root)
        self.starts += 1
        wait_for(lambda: self.log.read_text().count(READY) >= self.starts, 120, "the SuperLink")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> list[str]:
        """SIGKILL the whole server side at once (CLI, SuperLink, SuperExec, ServerApp), as a
        power cut would: nothing cleans up. Returns the command lines that were killed."""
        assert self.proc is not None
        tree = [self.proc.pid, *running(self.proc.pid, "")]
        killed = [cmdline(pid) for pid in tree]
        for pid in tree:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        wait_for(lambda: not any(is_alive(p) for p in tree), 30, "the server side to die", 0.2)
        return killed

    def stop(self) -> None:
        if self.proc is not None:
            stop_tree(self.proc)


@dataclass
class Agents:
    ground: Ground
    data: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, role: str, classes: tuple[str, ...]) -> None:
        root = self.ground.root
        folder = private_folder(self.data, root / "private" / name, classes)
        args = ["agent", "--role", role, "--name", name, "--data-dir", str(folder),
                "--superlink", self.ground.address,
                "--root-certificates", str(self.ground.certs / "ca.crt"),
                "--auth-key", str(self.ground.certs / "agents" / name),
                "--state-dir", str(root / "state" / name),
                "--runtime-port", str(quiet_port())]  # fmt: skip
        self.procs[name] = start_cli(args, self.log(name), root)

    def log(self, name: str) -> Path:
        return self.ground.root / f"agent-{name}.log"

    def text(self, name: str) -> str:
        return self.log(name).read_text(errors="replace")

    def wait_joined(self, names: list[str]) -> None:
        for name in names:
            wait_for(lambda n=name: "SuperNode ID" in self.text(n), 240, f"{name} to join")

    def stop(self, names: list[str]) -> None:
        for name in names:
            stop_tree(self.procs.pop(name))


@pytest.fixture(scope="module")
def fleet(
    fixture_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Ground, Agents]]:
    """A ground (SuperLink with TLS, node authentication, a database) with every key
    registered, and the three honest agents joined."""
    root = tmp_path_factory.mktemp("resilience")
    # The module's processes (ServerApp included) share the session's isolated cache, where
    # the ServerApp puts the pre-installed students the agents load.
    mp = pytest.MonkeyPatch()
    mp.setenv("SKYDISTILL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    with ExitStack() as stack:
        stack.callback(mp.undo)
        certs = make_certs(root / "certs", agents=[*CLASSES, *FUZZERS]).folder
        ground = Ground(root, certs, quiet_port())
        stack.callback(ground.stop)
        ground.start()
        agents = Agents(ground, fixture_data)
        stack.callback(lambda: agents.stop(list(agents.procs)))
        for name in [*CLASSES, *FUZZERS]:
            register_agent(ground.home, certs / "agents" / f"{name}.pub", name=name)
        for role, classes in CLASSES.items():
            agents.start(role, role, classes)
        agents.wait_joined(list(CLASSES))
        yield ground, agents


def _run_toml(path: Path, data: Path, out: Path, **values: Any) -> Path:
    """The operator's run config: a few keys, the rest are the app's defaults."""
    keys = {"data-dir": str(data), "out-dir": str(out), **QUICK, **values}
    RunConfig().with_values(keys)  # a typo here fails the test, not the run
    path.write_text(toml_text(keys))
    return path


def _submitted(output: str) -> int:
    found = re.search(r"run (\d+) submitted", output)
    assert found, output
    return int(found.group(1))


# The exporter's linger ends at the first scrape after the last round, so a long one costs
# nothing while this test scrapes; it only bounds the wait if the test stopped scraping.
LINGER = 30.0


def _run_over(home: Path, run_id: int, out: Path, rounds: int) -> Callable[[], bool]:
    """Whether Flower says the run is over. Its status costs a `flwr` process (about a
    CPU-second), so it is asked every 15 s, and every 2 s once the report holds every round."""
    asked = [0.0]

    def over() -> bool:
        due = 2.0 if len(report_rounds(out)) >= rounds else 15.0
        if time.monotonic() - asked[0] < due:
            return False
        asked[0] = time.monotonic()
        return run_status(home, run_id).startswith("finished")

    return over


def _online(home: Path) -> int:
    nodes = flwr(home, "supernode", "ls", CONNECTION)["nodes"]
    return sum(1 for n in nodes if n.get("status") == "online")


def test_a_deployed_federation_survives_its_server(
    fleet: tuple[Ground, Agents], fixture_data: Path
) -> None:
    ground, agents = fleet
    honest = list(CLASSES)
    if not ground.alive():
        ground.start()
    wait_for(lambda: _online(ground.home) == len(honest), 120, "only the honest agents online", 2)
    supernodes = {n: running(agents.procs[n].pid, "flower-supernode") for n in honest}
    out = ground.root / "outage"
    run_toml = _run_toml(
        ground.root / "outage.toml", fixture_data, out,
        **{"num-rounds": 2, "min-train-clients": 3, "metrics-address": "", "metrics-linger": 0.0},
    )  # fmt: skip
    submit = ["submit", str(run_toml), "--home", str(ground.home), "--app", str(PROJECT_ROOT)]
    first = _submitted(run_cli(submit, ground.root))

    # Round 1 is in the report (and its checkpoint written), and every agent has received its
    # round-2 message and started the ClientApp that trains on it (its second).
    def training_round_2() -> bool:
        rounds = [r["round"] for r in report_rounds(out)]
        assert rounds in ([], [1]), f"round 2 completed before the kill: {rounds}"
        return rounds == [1] and all(
            agents.text(n).count(CLIENTAPP_STARTED) >= 2
            and running(agents.procs[n].pid, "flwr-clientapp")
            for n in honest
        )

    wait_for(training_round_2, 600, "the agents to train round 2")
    killed = ground.kill()
    killed_at = time.monotonic()
    assert any("flower-superlink" in c for c in killed), killed
    assert any("flwr-serverapp" in c for c in killed), killed  # the ServerApp died mid-round
    assert [r["round"] for r in report_rounds(out)] == [1] and (out / "checkpoint.pt").is_file()
    assert all(agents.procs[n].poll() is None for n in honest), "an agent died with the server"
    # Down until every agent has noticed (a SuperNode calls the SuperLink every few seconds).
    lost = f"lost the SuperLink {ground.address}"
    wait_for(lambda: all(lost in agents.text(n) for n in honest), 120, "the agents to notice")

    # The operator: the same `skydistill server` again, then the same run with --resume.
    ground.start()
    output = run_cli([*submit, "--resume"], ground.root)
    assert "resuming after round 1 of 2 rounds" in output, output
    second = _submitted(output)
    wait_for(_run_over(ground.home, second, out, rounds=2), 900, "the resumed run to finish")
    assert run_status(ground.home, second) == COMPLETED
    # The killed run is not left "running": the SuperLink fails a run whose ServerApp sends no
    # heartbeat for HEARTBEAT_PATIENCE x HEARTBEAT_DEFAULT_INTERVAL s (60 s in Flower 1.42),
    # counted from its last heartbeat before the kill, which a fast resumed run can beat.
    patience = HEARTBEAT_PATIENCE * HEARTBEAT_DEFAULT_INTERVAL
    # Not before the patience is over (each status ask is a `flwr` process, about a CPU-s).
    time.sleep(max(0.0, killed_at + patience - 5.0 - time.monotonic()))
    lapse = patience + 60.0
    wait_for(lambda: run_status(ground.home, first).startswith("finished"), lapse,
             "the SuperLink to fail the killed run", 5)  # fmt: skip
    assert run_status(ground.home, first) == "finished:failed"

    rounds = report_rounds(out)
    assert [r["round"] for r in rounds] == [1, 2]  # every round exactly once
    for r in rounds:
        assert r["clients_ok"] == 3 and r["clients_failed"] == r["clients_rejected"] == 0, r
        assert {reply["role"] for reply in r["replies"]} == set(CLASSES)
    assert "resuming after round 1 from the checkpoint" in (out / "server.log").read_text()
    # The agents reconnected by themselves: the same agent and SuperNode processes throughout.
    for name in honest:
        text = agents.text(name)
        assert agents.procs[name].poll() is None, text[-3000:]
        assert running(agents.procs[name].pid, "flower-supernode") == supernodes[name]
        assert text.count("SuperNode ID") == 1, text[-3000:]
        assert text.index(lost) < text.index(f"reached the SuperLink {ground.address} again")
    # Resubmitting a completed run submits nothing.
    assert "the run is complete" in run_cli([*submit, "--resume"], ground.root)


def _scrape(address: str) -> dict[str, float]:
    """The exporter's samples, by name and labels (``name{label="v"}``)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_wire_fuzz_is_counted_by_reason_and_the_rounds_go_on(
    fleet: tuple[Ground, Agents], fixture_data: Path, tmp_path: Path
) -> None:
    ground, agents = fleet
    if not ground.alive():
        ground.start()
    try:
        for name in FUZZERS:
            agents.start(name, "drone", ("Forest",))
        agents.wait_joined(FUZZERS)
        nodes = len(CLASSES) + len(FUZZERS)
        wait_for(lambda: _online(ground.home) == nodes, 120, "every agent online", 2)
        app = fuzz.fuzz_app_folder(PROJECT_ROOT, tmp_path / "fuzz-app")
        exporter = f"127.0.0.1:{quiet_port()}"
        out = ground.root / "fuzz"
        run_toml = _run_toml(
            tmp_path / "fuzz.toml", fixture_data, out,
            **{"num-rounds": fuzz.ROUNDS, "min-train-clients": nodes,
               "metrics-address": exporter, "metrics-linger": LINGER},
        )  # fmt: skip
        submit = ["submit", str(run_toml), "--home", str(ground.home), "--app", str(app)]
        run_id = _submitted(run_cli(submit, ground.root))

        scraped: dict[str, float] = {}
        over = _run_over(ground.home, run_id, out, rounds=fuzz.ROUNDS)

        def finished() -> bool:
            """Scrape the live exporter every second until the run is over: after the last
            round it waits for the next scrape (at most LINGER s; a `flwr` status call on a
            loaded machine can hold this loop for seconds), so the last scrape holds the
            final counts."""
            with suppress(OSError):
                scraped.update(_scrape(exporter))
            assert ground.alive(), "the SuperLink died"
            return over()

        wait_for(finished, 900, "the fuzzed run to finish", 1)
        assert run_status(ground.home, run_id) == COMPLETED  # the server never stopped
    finally:
        agents.stop([n for n in FUZZERS if n in agents.procs])

    rounds = report_rounds(out)
    assert [r["round"] for r in rounds] == list(range(1, fuzz.ROUNDS + 1))
    total: Counter[str] = Counter()
    for r in rounds:
        cases = [fuzz.case_of(name, r["round"]) for name in FUZZERS]
        reasons = Counter(fuzz.REASON[c] for c in cases if c is not None and fuzz.REASON[c])
        assert r["rejections"] == dict(reasons), (r["round"], cases, r["rejections"])
        assert r["clients_rejected"] == sum(reasons.values())
        assert r["clients_failed"] == sum(1 for c in cases if c and fuzz.REASON[c] is None)
        # The honest agents' knowledge went on: their three replies made the round.
        assert r["clients_ok"] == 3 and r["clients_selected"] == nodes, r
        assert r["teacher_agreement"] is not None and r["global_accuracy"] is not None
        total.update(reasons)
    assert sorted(total) == sorted({v for v in fuzz.REASON.values() if v})
    assert sum(total.values()) == len([c for c in fuzz.CASES if fuzz.REASON[c]])
    # The server's Prometheus exporter counted the same, by reason.
    for reason, count in total.items():
        assert scraped[f'skydistill_reply_rejections_total{{reason="{reason}"}}'] == count
    assert scraped['skydistill_client_replies_total{status="rejected"}'] == sum(total.values())
    assert scraped['skydistill_client_replies_total{status="failed"}'] == 0
    assert scraped['skydistill_client_replies_total{status="ok"}'] == 3 * fuzz.ROUNDS
    assert scraped["skydistill_rounds_planned"] == fuzz.ROUNDS
    server_log = (out / "server.log").read_text()
    assert "rejected: oversized" in server_log and "rejected: indices" in server_log
