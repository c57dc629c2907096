"""The skydistill ServerApp: parse config, prepare teacher and knowledge, run FedKD rounds.

With an ``out-dir`` it leaves ``report.json`` (after every round), ``accuracy.png`` (at the
end) and ``server.log`` (its own log lines) there, however it was started.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from common import keys
from common.atomic import atomic_write
from common.class_stats import STATISTICS_BACKBONE, GroundFeatures
from common.config import ROLE_STUDENTS, RunConfig
from common.errors import CodecError
from common.preinstalled import preinstalled_student
from server import metrics
from server.aggregation import Rule
from server.checkpoint import load_checkpoint, restore, snapshot
from server.evidence import StatisticsKnowledge, ground_statistics
from server.fedavg import run_fedavg
from server.fleet import build_schedule, discover_clients
from server.ground import GroundSegment, prepare
from server.heads import ArchHead, DeployedHeads
from server.history import History, RoundRecord, finite_json
from server.knowledge import Knowledge
from server.logs import configure_logging, server_log
from server.nodes import check_simulated_nodes
from server.plots import ACCURACY_PLOT, plot_accuracy
from server.strategy import FedKD
from server.teacher import TeacherRefiner

log = logging.getLogger(__name__)

app = ServerApp()
GLOBAL_STUDENT_FILE = "global-student.pt"  # its state_dict, in out-dir at the end of a run


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = RunConfig.from_mapping(context.run_config)
    configure_logging()
    with server_log(Path(cfg.out_dir) if cfg.out_dir else None):
        run(grid, cfg)


def run(grid: Grid, cfg: RunConfig) -> None:
    torch.manual_seed(cfg.seed)
    # Ray limits the driver to one intra-op thread; the server's training runs while the
    # simulated clients are idle, so let it use every core.
    torch.set_num_threads(os.cpu_count() or 1)
    ground = prepare(cfg)
    check_simulated_nodes(grid, cfg.num_clients)
    student = ground.student
    history = History(config=cfg.to_mapping(), out_dir=Path(cfg.out_dir) if cfg.out_dir else None)
    history.teacher_accuracy = ground.teacher_accuracy
    history.start_accuracy = ground.student_start_accuracy
    if cfg.method == "fedavg":
        exporter = metrics.serve(cfg.metrics_address)
        try:
            run_fedavg(grid, cfg, ground, history)
        finally:
            _stop_exporter(exporter, cfg.metrics_linger)
        finish(history)
        return
    knowledge = Knowledge(
        ground.teacher_probs,
        cfg.teacher_mix,
        mix_start=cfg.teacher_mix_start,
        num_rounds=cfg.num_rounds,
    )
    statistics, heads = (
        _statistics_and_heads(cfg, ground) if cfg.client_statistics else (None, None)
    )
    strategy = FedKD(
        knowledge,
        codec=cfg.codec_mode,
        rule=Rule.parse(cfg.aggregation),
        trim=cfg.trim,
        topk=cfg.topk,
        fraction_train=cfg.fraction_train,
        min_train_nodes=cfg.min_train_clients,
        min_available_nodes=cfg.min_train_clients,
        reference_per_round=cfg.reference_per_round,
        seed=cfg.seed,
        evaluate_every=cfg.evaluate_every,
        num_rounds=cfg.num_rounds,
        schedule=build_schedule(cfg) if cfg.scenario else None,
        sample_by_client=cfg.sample_by == "client",
        statistics=statistics,
        heads=heads,
    )
    if strategy.schedule is not None or strategy.sample_by_client or heads is not None:
        # heads: each node is sent only its own architecture's
        directory = discover_clients(grid, cfg.num_clients)
        strategy.node_clients = directory.clients
        strategy.node_archs = {
            n: cfg.arch_of(role) for n, role in directory.roles.items() if role in ROLE_STUDENTS
        }
    refiner = None
    if cfg.teacher_refine_epochs > 0:
        refiner = TeacherRefiner(
            copy.deepcopy(ground.teacher), cfg, student.archive, student.reference, student.test
        )

    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    checkpoint = load_checkpoint(out_dir) if cfg.resume and out_dir else None
    if checkpoint is not None:
        checkpoint.check_matches(cfg, ground.fed)
        restore(checkpoint, strategy, student, history, refiner)
    remaining = cfg.num_rounds - strategy.round_offset
    if remaining <= 0:
        log.info("all %d rounds were already completed: nothing to resume", cfg.num_rounds)
        finish(history)
        return

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        record = strategy.current
        if server_round == 0 or record is None:
            return None
        server_round += strategy.round_offset
        record.train_seconds = time.perf_counter() - strategy.round_started
        previous = history.rounds[-1].global_accuracy if history.rounds else None
        if strategy.schedule is not None and not strategy.updated:
            # Nobody's knowledge arrived in this window: the global student stays as it was.
            record.global_accuracy = history.start_accuracy if previous is None else previous
        else:
            record.distill_loss = student.distil(knowledge.current, server_round)
            record.global_accuracy = student.evaluate()
            if refiner is not None:
                refine_teacher(refiner, knowledge, record, server_round)
        record.seconds = time.perf_counter() - strategy.round_started
        history.rounds.append(record)
        if out_dir is not None:  # the checkpoint first: the report never runs ahead of it
            snapshot(cfg, ground.fed, strategy, student, history, refiner).save(out_dir)
        history.rounds.pop()
        history.add(record)
        metrics.observe_round(record, previous)
        return MetricRecord({"accuracy": record.global_accuracy})

    train_config = ConfigRecord(
        {
            keys.TEMPERATURE: cfg.temperature,
            keys.KD_WEIGHT: cfg.kd_weight,
            keys.NORM_MEAN: list(ground.fed.stats.mean),
            keys.NORM_STD: list(ground.fed.stats.std),
        }
    )
    evaluate_config = ConfigRecord(
        {keys.NORM_MEAN: list(ground.fed.stats.mean), keys.NORM_STD: list(ground.fed.stats.std)}
    )
    metrics.set_run_info(
        type(strategy).__name__,
        strategy.rule.value,
        cfg.codec,
        cfg.dataset,
        teacher_accuracy=ground.teacher_accuracy,
    )
    exporter = metrics.serve(cfg.metrics_address)
    try:
        strategy.start(
            grid,
            strategy.knowledge_record(),
            num_rounds=remaining,
            timeout=cfg.round_timeout,
            train_config=train_config,
            evaluate_config=evaluate_config,
            evaluate_fn=evaluate,
        )
    finally:
        _stop_exporter(exporter, cfg.metrics_linger)
    if out_dir is not None:  # the global student as it ended, for benchmarks and deployment
        state = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
        atomic_write(out_dir / GLOBAL_STUDENT_FILE, lambda fh: torch.save(state, fh))
    path = finish(history)
    final = history.rounds[-1].global_accuracy if history.rounds else float("nan")
    log.info("run finished: global-student accuracy %.4f, report %s", final, path)


def _statistics_and_heads(
    cfg: RunConfig, ground: GroundSegment
) -> tuple[StatisticsKnowledge, DeployedHeads]:
    """The archive's class statistics through the shared backbone, and the heads the ground
    fits for the architectures of the run's roles; each backbone's features computed once."""
    student = ground.student
    archs = sorted({cfg.arch_of(role) for role in cfg.role_cycle})
    models = {a: preinstalled_student(cfg, ground.fed, a) for a in {*archs, STATISTICS_BACKBONE}}
    feats = {
        a: GroundFeatures.of(m, student.archive.x, student.archive.y, student.reference)
        for a, m in models.items()
    }
    heads = DeployedHeads(
        {a: ArchHead(models[a], feats[a]) for a in archs},
        epochs=cfg.head_epochs,
        lr=cfg.head_lr,
        kd_weight=cfg.head_kd_weight,
    )
    statistics = ground_statistics(cfg, feats[STATISTICS_BACKBONE], ground.fed.num_classes)
    return statistics, heads


def refine_teacher(
    refiner: TeacherRefiner, knowledge: Knowledge, record: RoundRecord, server_round: int
) -> None:
    """Refine the teacher towards K_t; its soft labels become the teacher part of K_t+1.

    A refinement that yields unusable soft labels (NaN after a diverged step) is logged and
    the previous teacher labels stay: the round and the run go on."""
    try:
        knowledge.set_teacher(refiner.refine(knowledge.current, server_round))
    except CodecError as exc:
        log.error(
            "round %d: the refined teacher's soft labels are unusable (%s); the teacher and "
            "its labels stay as before this round. Lower teacher-refine-lr or set "
            "teacher-refine-epochs = 0",
            server_round,
            exc,
        )
    record.teacher_accuracy = refiner.evaluate()


def _stop_exporter(exporter: metrics.MetricsServer | None, linger: float) -> None:
    if exporter is not None:
        # Stay up a few scrape intervals so Prometheus sees the final round.
        time.sleep(linger)
        exporter.stop()


def finish(history: History) -> Path | None:
    """Write the final report and its ``accuracy.png``; a plot that cannot be written is
    logged, and the run still counts as completed."""
    path = history.write()
    if history.out_dir is not None:
        plot = history.out_dir / ACCURACY_PLOT
        try:
            plot_accuracy(finite_json(history.to_dict()), plot)
        except (OSError, ValueError) as exc:
            log.error("cannot write %s (%s): report.json has every value it shows", plot, exc)
        else:
            log.info("accuracy per round plotted in %s", plot)
    return path
