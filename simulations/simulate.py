"""``skydistill simulate``: a federation on Flower's simulation engine (Ray backend).

Starts a SuperLink in simulation mode on 127.0.0.1, submits the app with ``flwr run``, follows
progress through ``report.json`` and the run's status, then plots ``accuracy.png``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from clients.storage import STUDENTS_DIR
from common.config import RunConfig
from common.config_parse import read_toml_values
from common.errors import ConfigError
from common.federation import dataset_folder
from common.processes import FlowerError
from common.settings import PROJECT_ROOT
from server.checkpoint import CHECKPOINT_FILE, load_checkpoint
from server.fleet import build_schedule
from server.ground import prepare
from server.history import REPORT_FILE
from server.plots import plot_accuracy
from server.timings import format_seconds, hand_over
from simulations.flower import (
    CONNECTION,
    SuperLink,
    stream_logs,
    submit_run,
    wait_for_run,
    write_connection,
)

log = logging.getLogger(__name__)

COMPLETED = "finished:completed"
RUN_CONFIG_FILE = "run-config.toml"
# Ray reads the cluster to join from this variable when Flower calls ray.init() without an
# address (Flower 1.42 passes only num_cpus/num_gpus/logging options as init args).
RAY_ADDRESS_ENV = "RAY_ADDRESS"


def ray_env(ray_address: str | None) -> dict[str, str]:
    """Environment for the SuperLink (and so its simulation process): join ``ray_address``.

    Without an address Ray must not pick up a cluster on its own: RAY_ADDRESS is set to
    ``local`` so that the simulation starts its own private Ray instance, as before."""
    return {RAY_ADDRESS_ENV: ray_address or "local"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def write_run_config(cfg: RunConfig, path: Path) -> Path:
    lines = [f"{key} = {_toml_value(v)}" for key, v in cfg.to_mapping().items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rounds_done(out: Path) -> tuple[int, float | None]:
    try:
        report = json.loads((out / REPORT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return 0, None
    rounds = report.get("rounds", [])
    return len(rounds), (rounds[-1].get("global_accuracy") if rounds else None)


def simulate(
    cfg: RunConfig,
    out: Path,
    *,
    app_dir: Path = PROJECT_ROOT,
    client_cpus: int = 1,
    progress: bool = True,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Run one simulated federation and return its report (also in ``out/report.json``).

    ``ray_address`` (``auto`` or HOST:PORT): run the virtual clients on that existing Ray
    cluster (``ray start --head``) instead of a private Ray instance."""
    started = time.time()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = with_paths(cfg, out)
    if not cfg.resume:  # a new run in this folder: forget an earlier run's state
        (out / CHECKPOINT_FILE).unlink(missing_ok=True)
        shutil.rmtree(out / STUDENTS_DIR, ignore_errors=True)
    attached = ray_address is not None
    # Other settings than the checkpoint's are refused before anything starts (the data, the
    # ground's models, the SuperLink); the data split is checked once the tiles are loaded.
    checkpoint = load_checkpoint(out) if cfg.resume else None
    if checkpoint is not None:
        checkpoint.check_settings(cfg)
    # The ground's preparation (decode the tiles, train the teacher and the global student or
    # find them cached) runs here, once, before any simulation process or Ray worker exists:
    # the ServerApp then loads them from the cache. The SuperLink is launched once the tiles
    # are loaded (missing or corrupt data starts nothing), so that its start (about 3 s of
    # imports) overlaps the rest of the preparation.
    with ExitStack() as stack:
        links: list[SimulationLink] = []

        def launch() -> None:
            link = simulation_link(
                out / "flwr-home", env=ray_env(ray_address), attached=attached, wait=False
            )
            links.append(stack.enter_context(link))

        torch.set_num_threads(os.cpu_count() or 1)
        ground = prepare(cfg, progress=progress, on_data=launch)
        log.info("%d %s tiles in %s", len(ground.fed.arrays), cfg.dataset, dataset_folder(cfg))
        log.info("ground segment seconds: %s", format_seconds(ground.seconds))
        if cfg.scenario:  # refuse a mismatched scenario, and compute its contacts, first
            build_schedule(cfg)
        if checkpoint is not None:  # refuse here, before any run is submitted
            checkpoint.check_data(ground.fed)
            log.info("resuming %s after round %d of %d", out, checkpoint.round, cfg.num_rounds)
        # The report shows where the ground's time went: here, not in the ServerApp's loads.
        hand_over(out, cfg, started, ground.seconds)
        (sim,) = links
        report = sim.run(cfg, out, app_dir=app_dir, client_cpus=client_cpus, progress=progress)
    plot_accuracy(report, out / "accuracy.png")
    return report


@dataclass(frozen=True)
class SimulationLink:
    """A SuperLink in simulation mode that ``flwr`` in its home is connected to: submit runs
    to it with :meth:`run`. Made by :func:`simulation_link`."""

    link: SuperLink
    attached: bool = False  # its simulations join an existing Ray cluster

    @property
    def home(self) -> Path:
        return self.link.home

    def run(
        self,
        cfg: RunConfig,
        out: Path,
        *,
        app_dir: Path = PROJECT_ROOT,
        client_cpus: int = 1,
        progress: bool = True,
    ) -> dict[str, Any]:
        """One federation on this SuperLink (:func:`run_federation`): its report."""
        self.link.wait_ready()  # at once if it answered before
        return run_federation(
            self.home,
            cfg,
            out,
            app_dir=app_dir,
            client_cpus=client_cpus,
            progress=progress,
            attached=self.attached,
        )


@contextmanager
def simulation_link(
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    attached: bool = False,
    wait: bool = True,
) -> Iterator[SimulationLink]:
    """Start a simulation-mode SuperLink with ``FLWR_HOME=home`` and environment ``env``, point
    the ``flwr`` connection in ``home`` at it, and stop it (its whole tree) on leaving.

    ``attached``: ``env`` makes its simulations join an existing Ray cluster (``ray_env``).
    ``wait=False``: enter as soon as its process is launched (do other work while it starts);
    :meth:`SimulationLink.run` waits for it to answer."""
    link = SuperLink(home, env=env)
    link.launch()
    try:
        write_connection(home, link.address)
        if wait:
            link.wait_ready()
        yield SimulationLink(link, attached)
    finally:
        link.stop()


def resume_config(out: Path) -> RunConfig:
    """The run config of the run in ``out``, set to continue from its checkpoint."""
    path = out / RUN_CONFIG_FILE
    if not (out / CHECKPOINT_FILE).is_file():
        raise ConfigError(
            f"nothing to resume in {out}: no {CHECKPOINT_FILE} (a run writes it after its "
            "first completed round)"
        )
    return RunConfig.from_mapping({**read_toml_values(path), "resume": 1})


def finished_report(out: Path, cfg: RunConfig) -> dict[str, Any] | None:
    """The report of the run in ``out`` if it already completed all its rounds, else None.

    Complete means: the checkpoint holds ``cfg.num_rounds`` rounds of a run with that many
    rounds, and ``report.json`` has its final line for them. Otherwise (a crash between the
    last checkpoint and the report, say) the run is resumed as usual."""
    checkpoint = load_checkpoint(out)
    if checkpoint is None or checkpoint.round < cfg.num_rounds:
        return None
    if checkpoint.config.get("num-rounds") != cfg.num_rounds:
        return None  # run-config.toml was edited: the resume path names the difference
    try:
        report = json.loads((out / REPORT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    final = report.get("final") if isinstance(report, dict) else None
    if not isinstance(final, dict) or final.get("rounds_completed", 0) < cfg.num_rounds:
        return None
    done: dict[str, Any] = report
    log.info(
        "%s: checkpoint after round %d of %d, nothing to resume",
        out,
        checkpoint.round,
        cfg.num_rounds,
    )
    return done


def with_paths(cfg: RunConfig, out: Path) -> RunConfig:
    """``cfg`` with absolute data and output folders (the SuperLink runs elsewhere)."""
    return cfg.with_values({"data-dir": str(dataset_folder(cfg).parent), "out-dir": str(out)})


def run_federation(
    home: Path,
    cfg: RunConfig,
    out: Path,
    *,
    app_dir: Path = PROJECT_ROOT,
    client_cpus: int = 1,
    progress: bool = True,
    attached: bool = False,
) -> dict[str, Any]:
    """Submit one run to the SuperLink configured in ``home``, follow it, return its report.

    ``attached``: the SuperLink's simulation joins an existing Ray cluster, whose size is its
    own (Ray refuses ``num_cpus`` when joining), so no ``init-args-num-cpus`` is sent."""
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).unlink(missing_ok=True)
    run_config = write_run_config(cfg, out / RUN_CONFIG_FILE)
    federation: dict[str, int] = {
        "num-supernodes": cfg.num_clients,
        "client-resources-num-cpus": client_cpus,
    }
    if not attached:
        federation["init-args-num-cpus"] = os.cpu_count() or 1
    run_id = submit_run(home, app_dir, run_config, federation)
    log.info("run %d submitted to %s; logs in %s", run_id, CONNECTION, out / "run.log")
    logs = stream_logs(home, run_id, out / "run.log")
    bar = tqdm(total=cfg.num_rounds, desc="rounds", unit="round", disable=not progress)
    try:

        def tick() -> None:
            done, acc = _rounds_done(out)
            if done > bar.n:
                bar.update(done - bar.n)
                if acc is not None:
                    bar.set_postfix(accuracy=f"{acc:.4f}")

        def over() -> bool:
            """The rounds are in and Flower has closed the run's log stream: its status is
            worth asking for now (each ask is a ``flwr`` process of about a CPU-second)."""
            return logs.ended() and _rounds_done(out)[0] >= cfg.num_rounds

        status = wait_for_run(home, run_id, on_poll=tick, done=over)
        tick()
    finally:
        bar.close()
        logs.terminate()
    if status != COMPLETED:
        raise FlowerError(f"run {run_id} ended with status {status!r}: see {out / 'run.log'}")
    report: dict[str, Any] = json.loads((out / REPORT_FILE).read_text())
    return report
