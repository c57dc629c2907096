"""The skydistill ClientApp: decode the targets, run a local round, send soft predictions."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode
from torch import nn

from clients.attacks import is_attacker, poison
from clients.failures import FailurePlan
from clients.fedavg import local_fedavg, parse_fedavg
from clients.instructions import parse_evaluate, parse_train
from clients.local_data import local_splits
from clients.privacy import privatise
from clients.reply import build_reply
from clients.student import answer_round, local_round
from clients.trace import save_train
from common import keys
from common.class_stats import STATISTICS_BACKBONE, ClassStats, features
from common.config import RunConfig
from common.errors import ConfigError, DataNotFoundError
from common.federation import Federation, Split, load_federation
from common.models import build_model
from common.preinstalled import preinstalled_student
from common.student_file import load_student, save_student
from common.training import TrainSettings, accuracy

STUDENT_STATE = "student"
STATISTICS_SENT = "statistics-sent"  # the round this client's class statistics were sent in
STUDENTS_DIR = "students"

log = logging.getLogger(__name__)

app = ClientApp()


def _identity(context: Context) -> tuple[RunConfig, int, str]:
    cfg = RunConfig.from_mapping(context.run_config)
    torch.set_num_threads(int(context.node_config.get(keys.NODE_NUM_THREADS, 1)))
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    default = scenario_role(cfg.scenario, partition_id) if cfg.scenario else None
    role = str(context.node_config.get(keys.NODE_ROLE, default or cfg.role_of(partition_id)))
    return cfg, partition_id, role


@functools.cache
def _scenario_roles(scenario: str) -> tuple[str, ...]:
    from common.fleet.scenario import load_scenario  # only fleets need the scenario

    return tuple(load_scenario(scenario).roles())


def scenario_role(scenario: str, partition_id: int) -> str:
    """The role of simulated client ``partition_id`` in a fleet scenario."""
    roles = _scenario_roles(scenario)
    if not 0 <= partition_id < len(roles):
        raise ConfigError(f"partition {partition_id} is not in scenario {scenario!r}")
    return roles[partition_id]


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Who this node is: its partition id (= scenario client) and role, nothing else."""
    _, partition_id, role = _identity(context)
    info = ConfigRecord({keys.PARTITION_ID: partition_id, keys.ROLE: role})
    return Message(RecordDict({keys.INFO: info}), reply_to=msg)


def _splits(
    context: Context, cfg: RunConfig, fed: Federation, partition_id: int
) -> tuple[Split, Split]:
    """(train, held-out): an agent's own folder (``data-dir`` in the node config), else the
    simulation partition of ``partition_id``."""
    data_dir = context.node_config.get(keys.NODE_DATA_DIR)
    if data_dir:
        return local_splits(fed, Path(str(data_dir)), cfg.holdout_fraction, cfg.seed, partition_id)
    if not 0 <= partition_id < cfg.num_clients:  # more simulated SuperNodes than shards
        raise ConfigError(
            f"partition-id {partition_id} has no data: the run config has num-clients = "
            f"{cfg.num_clients} (partitions 0..{cfg.num_clients - 1}); run as many SuperNodes "
            f'as clients: flwr run . --federation-config "num-supernodes={cfg.num_clients}"'
        )
    return fed.client_splits(partition_id, cfg.holdout_fraction, cfg.seed)


def _state_dir(context: Context, cfg: RunConfig) -> Path | None:
    """Where students are kept: an agent's ``state-dir``, else the run's out-dir (simulation)."""
    if context.node_config.get(keys.NODE_DATA_DIR):
        state = context.node_config.get(keys.NODE_STATE_DIR)
        return Path(str(state)) if state else None
    return Path(cfg.out_dir) if cfg.out_dir else None


def student_path(out_dir: Path, role: str, partition_id: int, server_round: int) -> Path:
    """Where a simulated client keeps the student it trained in ``server_round``."""
    return out_dir / STUDENTS_DIR / f"{role}-{partition_id:05d}-r{server_round:05d}.pt"


def saved_students(out_dir: Path, role: str, partition_id: int) -> list[tuple[int, Path]]:
    """(round, path) of a client's saved students, oldest first."""
    found = []
    for path in (out_dir / STUDENTS_DIR).glob(f"{role}-{partition_id:05d}-r*.pt"):
        try:
            found.append((int(path.stem.rsplit("-r", 1)[1]), path))
        except ValueError:
            continue
    return sorted(found)


def latest_student(
    out_dir: Path, role: str, partition_id: int, before_round: int | None = None
) -> Path | None:
    """The newest saved student (trained before ``before_round``, if given), or None."""
    found = [
        p
        for r, p in saved_students(out_dir, role, partition_id)
        if before_round is None or r < before_round
    ]
    return found[-1] if found else None


def _student(
    context: Context,
    cfg: RunConfig,
    fed: Federation,
    role: str,
    partition_id: int,
    server_round: int | None = None,
) -> nn.Module:
    """The student in this client's state; after a server restart (``resume``) the one it
    saved before this round; else the pre-installed one (or a fresh one)."""
    arch = cfg.arch_of(role)
    saved = context.state.get(STUDENT_STATE)
    if isinstance(saved, ArrayRecord):
        student = build_model(arch, fed.spec.num_bands, fed.num_classes)
        student.load_state_dict(saved.to_torch_state_dict())
        return student
    state_dir = _state_dir(context, cfg)
    if cfg.resume and state_dir is not None:
        path = latest_student(state_dir, role, partition_id, server_round)
        if path is not None:
            return load_student(path).build()
    if cfg.client_init == "pretrained":
        return preinstalled_student(cfg, fed, arch)
    return build_model(arch, fed.spec.num_bands, fed.num_classes, seed=cfg.seed)


def _keep(
    context: Context,
    cfg: RunConfig,
    fed: Federation,
    student: nn.Module,
    role: str,
    partition_id: int,
    server_round: int,
) -> None:
    context.state[STUDENT_STATE] = ArrayRecord(student.state_dict())
    out = _state_dir(context, cfg)
    if out is not None:
        save_student(
            student_path(out, role, partition_id, server_round),
            student,
            arch=cfg.arch_of(role),
            role=role,
            bands=fed.spec.band_names,
            classes=fed.spec.classes,
            stats=fed.stats,
        )
        # Keep the two newest: after a crash the server may redo the round just saved.
        for _, old in saved_students(out, role, partition_id)[:-2]:
            old.unlink(missing_ok=True)


def _server_round(msg: Message) -> int:
    config = msg.content.get(keys.TRAIN_CONFIG)
    value = config.get(keys.SERVER_ROUND, 0) if isinstance(config, ConfigRecord) else 0
    return int(value) if isinstance(value, int | float) else 0


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One local round, subject to the role's simulated dropout, straggler delay and CPU share
    (``dropout``, ``straggler-seconds``, ``cpu-share``; see clients/failures.py)."""
    started = time.perf_counter()
    cfg, partition_id, role = _identity(context)
    server_round = _server_round(msg)
    plan = FailurePlan.from_config(cfg)
    fate = plan.fate(role, partition_id, server_round)
    if fate.drop:
        reason = plan.dropout_message(role, partition_id, server_round)
        log.info(reason)
        return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason), reply_to=msg)
    if fate.threads is not None:
        torch.set_num_threads(fate.threads)
    if cfg.trace_dir and cfg.method == "fedkd":  # bench scale replays these messages
        save_train(Path(cfg.trace_dir), msg.content, server_round, partition_id)
    if cfg.method == "fedavg":
        reply = _train_fedavg(msg, context, cfg, partition_id, role)
    else:
        reply = _train_fedkd(msg, context, cfg, partition_id, role)
    reply_metrics = reply.content.get(keys.METRICS)
    if isinstance(reply_metrics, MetricRecord):
        reply_metrics[keys.CLIENT_SECONDS] = time.perf_counter() - started
    idle = fate.idle_seconds(time.perf_counter() - started)
    if idle > 0:
        time.sleep(idle)
    return reply


def _train_fedkd(
    msg: Message, context: Context, cfg: RunConfig, partition_id: int, role: str
) -> Message:
    fed = load_federation(cfg)
    task = parse_train(msg, fed.num_classes, len(fed.partition.reference))
    fed = fed.with_stats(task.stats)
    train_split, holdout = _splits(context, cfg, fed, partition_id)
    if len(train_split) == 0:
        raise DataNotFoundError(
            f"client {partition_id} ({role}) has no usable training tiles: it leaves this "
            "round; give it data (or fewer clients per shard pool) to take part"
        )
    student = _student(context, cfg, fed, role, partition_id, task.server_round)
    reference = fed.reference_images(task.indices)
    if task.send_statistics:
        # Statistics mode: the backbone stays the shared pre-installed one (the statistics
        # are in its feature space); the ground's head for this architecture is deployed.
        result = answer_round(student, task.heads.get(cfg.arch_of(role)), holdout, reference)
        result = replace(result, num_examples=len(train_split))
    else:
        result = local_round(
            student,
            train_split,
            holdout,
            reference,
            task.targets,
            TrainSettings(
                epochs=cfg.client_epochs,
                batch_size=cfg.batch_size,
                learning_rate=cfg.client_lr,
                seed=cfg.seed * 1000 + task.server_round,
                logit_adjust=True,
                freeze_bn=cfg.client_bn == "frozen",
            ),
            temperature=task.temperature,
            kd_weight=task.kd_weight,
            digest_epochs=cfg.client_digest_epochs,
        )
    _keep(context, cfg, fed, student, role, partition_id, task.server_round)
    probs = result.probs
    rng = np.random.default_rng([cfg.seed, partition_id, task.server_round])
    if cfg.attackers and is_attacker(partition_id, cfg.num_clients, cfg.attackers):
        probs = poison(probs, cfg.attack, partition_id, rng)
    if cfg.dp_noise > 0:
        probs = privatise(probs, cfg.dp_clip, cfg.dp_noise, rng)
    statistics = None
    if task.send_statistics and not context.state.get(STATISTICS_SENT):
        # A shard does not change: its statistics travel once, the ground keeps them.
        statistics = shard_statistics(cfg, fed, train_split)
        context.state[STATISTICS_SENT] = ConfigRecord({keys.SERVER_ROUND: task.server_round})
    reply = build_reply(
        probs,
        task.indices,
        fed.num_classes,
        task.codec,
        role,
        {
            keys.NUM_EXAMPLES: result.num_examples,
            keys.TRAIN_LOSS: result.train_loss,
            keys.LOCAL_ACCURACY: result.local_accuracy,
            keys.CLASS_COUNTS: torch.bincount(train_split.y, minlength=fed.num_classes).tolist(),
            keys.TRAIN_SAMPLES: result.train_samples,
        },
        topk=task.topk,
        statistics=statistics,
        client_name=_client_name(context, role, partition_id),
    )
    return Message(reply, reply_to=msg)


def shard_statistics(cfg: RunConfig, fed: Federation, train: Split) -> ClassStats:
    """Class statistics of the shard through the shared backbone (the pre-installed tiny
    student every node holds, frozen), under the eight flips and rotations of each tile."""
    backbone = preinstalled_student(cfg, fed, STATISTICS_BACKBONE)
    return ClassStats.of(features(backbone, train.x), train.y.numpy(), fed.num_classes)


def _client_name(context: Context, role: str, partition_id: int) -> str:
    """A stable name: an agent's node name, else the simulated client's role and partition."""
    name = context.node_config.get(keys.NODE_NAME)
    return str(name) if name else f"{role}-{partition_id}"


def _train_fedavg(
    msg: Message, context: Context, cfg: RunConfig, partition_id: int, role: str
) -> Message:
    """The FedAvg baseline: weights in, weights out (only with ``method = "fedavg"``)."""
    task = parse_fedavg(msg)
    fed = load_federation(cfg).with_stats(task.stats)
    train_split, _ = _splits(context, cfg, fed, partition_id)
    model = build_model(cfg.student or "tiny", fed.spec.num_bands, fed.num_classes)
    loss = local_fedavg(model, task, train_split, seed=cfg.seed * 1000 + task.server_round)
    content = RecordDict(
        {
            keys.FEDAVG_ARRAYS: ArrayRecord(model.state_dict()),
            keys.METRICS: MetricRecord(
                {
                    keys.NUM_EXAMPLES: len(train_split),
                    keys.TRAIN_LOSS: loss,
                    keys.TRAIN_SAMPLES: task.epochs * len(train_split),
                }
            ),
            keys.INFO: ConfigRecord({keys.ROLE: role}),
        }
    )
    return Message(content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Score the student this client would deploy on the common test split and its own
    held-out split (simulation)."""
    cfg, partition_id, role = _identity(context)
    task = parse_evaluate(msg)
    fed = load_federation(cfg).with_stats(task.stats)
    metrics: dict[str, int | float | list[int] | list[float]] = {keys.NUM_EXAMPLES: 0}
    saved = context.state.get(STUDENT_STATE)
    if isinstance(saved, ArrayRecord) or cfg.client_init == "pretrained":
        student = _student(context, cfg, fed, role, partition_id)
        test = fed.test_split()
        _, holdout = _splits(context, cfg, fed, partition_id)
        metrics = {
            keys.NUM_EXAMPLES: len(test),
            keys.TEST_ACCURACY: accuracy(student, test.x, test.y),
        }
        if len(holdout):
            metrics[keys.LOCAL_ACCURACY] = accuracy(student, holdout.x, holdout.y)
    content = RecordDict(
        {keys.METRICS: MetricRecord(metrics), keys.INFO: ConfigRecord({keys.ROLE: role})}
    )
    return Message(content, reply_to=msg)
