"""The skydistill ServerApp: parse config, prepare teacher and knowledge, run FedKD rounds.

With an ``out-dir`` it leaves ``report.json`` (after every round), ``accuracy.png`` (at the
end) and ``server.log`` (its own log lines) there, however it was started.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from common import keys
from common.config import RunConfig
from server import metrics
from server.build import build_refiner, build_strategy, round_configs
from server.checkpoint import resume
from server.dispatch import WindowedGrid
from server.fedavg import run_fedavg
from server.ground import prepare
from server.history import History
from server.logs import configure_logging, server_log
from server.nodes import check_simulated_nodes
from server.plots import finish_report
from server.rounds import ServerRound
from server.timings import format_seconds, run_clock, take_over

log = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = RunConfig.from_mapping(context.run_config)
    configure_logging()
    with server_log(Path(cfg.out_dir) if cfg.out_dir else None):
        run(grid, cfg)


def run(grid: Grid, cfg: RunConfig) -> None:
    started = time.time()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    handover = take_over(out_dir, cfg)  # what skydistill simulate measured before Flower
    torch.manual_seed(cfg.seed)
    # Ray limits the driver to one intra-op thread; the server's training runs while the
    # simulated clients are idle, so let it use every core.
    torch.set_num_threads(os.cpu_count() or 1)
    ground = prepare(cfg)
    clock = run_clock(started, ground.seconds, handover)
    log.info("ground segment seconds: %s", format_seconds(clock.phases))
    if handover is not None:  # this ServerApp's own, summed above as server-ground
        log.info("server-ground seconds: %s", format_seconds(ground.seconds))
    check_simulated_nodes(grid, cfg.num_clients)  # Flower's own grid: it asks its type
    grid = WindowedGrid(grid, cfg.max_in_flight)  # every round's messages go through it
    history = History(config=cfg.to_mapping(), out_dir=out_dir, clock=clock)
    history.teacher_accuracy = ground.teacher_accuracy
    history.start_accuracy = ground.student_start_accuracy
    metrics.set_planned_rounds(cfg.num_rounds)
    if cfg.method == "fedavg":
        with metrics.serving(cfg.metrics_address, cfg.metrics_linger):
            run_fedavg(grid, cfg, ground, history)
        clock.lap(keys.PHASE_FINISH)  # the model saved, the exporter's linger
        finish_report(history)
        log.info("run seconds: %s", format_seconds(history.phase_seconds()))
        return
    strategy, refiner = build_strategy(cfg, ground, grid), build_refiner(cfg, ground)
    fed, student = ground.fed, ground.student
    if (remaining := resume(cfg, fed, strategy, student, history, refiner)) == 0:
        finish_report(history)
        return
    after = ServerRound(cfg, fed, strategy, strategy.knowledge, student, history, refiner)
    train_config, evaluate_config = round_configs(cfg, fed)
    kind, rule = type(strategy).__name__, strategy.rule.value
    metrics.set_run_info(
        kind, rule, cfg.codec, cfg.dataset, teacher_accuracy=ground.teacher_accuracy
    )
    with metrics.serving(cfg.metrics_address, cfg.metrics_linger):
        clock.lap(keys.PHASE_SETUP)
        strategy.start(
            grid,
            strategy.knowledge_record(),
            num_rounds=remaining,
            timeout=cfg.round_timeout,
            train_config=train_config,
            evaluate_config=evaluate_config,
            evaluate_fn=after,
        )
        clock.restart()  # what follows, the exporter's linger included, is the finish
    after.finish()
