"""The skydistill ClientApp: decode the targets, run a local round, send soft predictions.

Each handler decodes the Flower records into typed objects (:class:`clients.node.Node`,
clients/instructions.py), calls the code below (clients/round.py, clients/storage.py,
clients/failures.py, clients/fedavg.py) and encodes the reply (clients/reply.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode

from clients import resident, storage
from clients.failures import FailurePlan
from clients.fedavg import local_fedavg, parse_fedavg
from clients.instructions import parse_evaluate, parse_train, server_round_of
from clients.node import Node
from clients.reply import build_reply
from clients.round import (
    check_shard,
    claimed,
    fedkd_round,
    reference_truth,
    round_seed,
    shard_statistics,
    shared_predictions,
    statistics_due,
)
from clients.timing import DATA, DECODE, ENCODE, KEEP, MODEL, part
from clients.trace import save_train
from common import keys
from common.models import build_model
from common.training import accuracy

log = logging.getLogger(__name__)

app = ClientApp()


def node_of(context: Context) -> Node:
    """This node, decoded from its context; its torch threads set for the round."""
    node = Node.of(context)
    torch.set_num_threads(node.threads)
    return node


def node_key(context: Context) -> resident.NodeKey:
    """What this process keeps the node's student under (clients/resident.py)."""
    return (context.run_id, context.node_id)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Who this node is: its partition id (= scenario client) and role, nothing else."""
    node = node_of(context)
    info = ConfigRecord({keys.PARTITION_ID: node.partition_id, keys.ROLE: node.role})
    return Message(RecordDict({keys.INFO: info}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One local round, subject to the role's simulated dropout, straggler delay and CPU share
    (``dropout``, ``straggler-seconds``, ``cpu-share``; see clients/failures.py)."""
    started = time.perf_counter()
    with part(DECODE):
        node = node_of(context)
        cfg, server_round = node.cfg, server_round_of(msg)
        plan = FailurePlan.from_config(cfg)
        fate = plan.fate(node.role, node.partition_id, server_round)
    if fate.drop:
        reason = plan.dropout_message(node.role, node.partition_id, server_round)
        log.info(reason)
        return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason), reply_to=msg)
    if fate.threads is not None:
        torch.set_num_threads(fate.threads)
    if cfg.trace_dir and cfg.method == "fedkd":  # bench scale replays these messages
        save_train(Path(cfg.trace_dir), msg.content, server_round, node.partition_id)
    if cfg.method == "fedavg":
        content = _train_fedavg(msg, node)
    else:
        content = _train_fedkd(msg, context, node)
    reply_metrics = content.get(keys.METRICS)
    if isinstance(reply_metrics, MetricRecord):
        reply_metrics[keys.CLIENT_SECONDS] = time.perf_counter() - started
    idle = fate.idle_seconds(time.perf_counter() - started)
    if idle > 0:
        time.sleep(idle)
    return Message(content, reply_to=msg)


def _train_fedkd(msg: Message, context: Context, node: Node) -> RecordDict:
    with part(DECODE):
        data = resident.run_data(node.cfg)
        task = parse_train(msg, data.num_classes, len(data.partition.reference))
        fed = resident.federation(node.cfg, task.stats)
    with part(DATA):
        train_split, holdout = resident.node_splits(node, fed)
        check_shard(node, train_split)
        reference = resident.reference(node.cfg, fed, task.indices)
    key = node_key(context)
    with part(MODEL):
        student = storage.current_student(
            context.state, node, fed, task.server_round, key=key, take=True
        )
    result = fedkd_round(node, task, student, train_split, holdout, reference)
    with part(KEEP):
        storage.keep_student(context.state, node, fed, student, task.server_round, key=key)
    truth = reference_truth(fed, task.indices) if node.cfg.attack_omniscient else None
    statistics, r = None, task.server_round
    sent = storage.statistics_round(context.state)
    if task.send_statistics and statistics_due(
        node.cfg, node.partition_id, task.server_round, sent
    ):
        # A shard does not change: its statistics travel once, the ground keeps them.
        statistics = shard_statistics(
            node.cfg, fed, train_split, node.partition_id, task.server_round, student
        )
        storage.mark_statistics_sent(context.state, task.server_round)
    with part(ENCODE):
        probs = shared_predictions(
            result.probs,
            node.cfg,
            node.partition_id,
            task.server_round,
            targets=task.targets,
            truth=truth,
        )
        return build_reply(
            probs,
            task.indices,
            fed.num_classes,
            task.codec,
            node.role,
            {
                keys.NUM_EXAMPLES: claimed(node.cfg, node.partition_id, r, result.num_examples),
                keys.TRAIN_LOSS: result.train_loss,
                keys.LOCAL_ACCURACY: result.local_accuracy,
                keys.CLASS_COUNTS: [
                    claimed(node.cfg, node.partition_id, r, n)
                    for n in torch.bincount(train_split.y, minlength=fed.num_classes).tolist()
                ],
                keys.TRAIN_SAMPLES: result.train_samples,
            },
            topk=task.topk,
            statistics=statistics,
            client_name=node.name,
        )


def _train_fedavg(msg: Message, node: Node) -> RecordDict:
    """The FedAvg baseline: weights in, weights out (only with ``method = "fedavg"``)."""
    task = parse_fedavg(msg)
    fed = resident.federation(node.cfg, task.stats)
    train_split, _ = resident.node_splits(node, fed)
    model = build_model(node.cfg.student or "tiny", fed.spec.num_bands, fed.num_classes)
    seed = round_seed(node.cfg.seed, task.server_round)
    loss = local_fedavg(model, task, train_split, seed=seed)
    metrics: dict[str, int | float | list[int] | list[float]] = {
        keys.NUM_EXAMPLES: len(train_split),
        keys.TRAIN_LOSS: loss,
        keys.TRAIN_SAMPLES: task.epochs * len(train_split),
    }
    return RecordDict(
        {
            keys.FEDAVG_ARRAYS: ArrayRecord(model.state_dict()),
            keys.METRICS: MetricRecord(metrics),
            keys.INFO: ConfigRecord({keys.ROLE: node.role}),
        }
    )


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Score the student this client would deploy on the common test split and its own
    held-out split (simulation)."""
    node = node_of(context)
    task = parse_evaluate(msg)
    fed = resident.federation(node.cfg, task.stats)
    metrics: dict[str, int | float | list[int] | list[float]] = {keys.NUM_EXAMPLES: 0}
    if storage.has_student(context.state) or node.cfg.client_init == "pretrained":
        student = storage.current_student(context.state, node, fed, key=node_key(context))
        test = fed.test_split()
        _, holdout = resident.node_splits(node, fed)
        metrics = {
            keys.NUM_EXAMPLES: len(test),
            keys.TEST_ACCURACY: accuracy(student, test.x, test.y),
        }
        if len(holdout):
            metrics[keys.LOCAL_ACCURACY] = accuracy(student, holdout.x, holdout.y)
    content = RecordDict(
        {keys.METRICS: MetricRecord(metrics), keys.INFO: ConfigRecord({keys.ROLE: node.role})}
    )
    return Message(content, reply_to=msg)
