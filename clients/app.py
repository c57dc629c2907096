"""The skydistill ClientApp: decode the targets, run a local round, send soft predictions."""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from torch import nn

from clients.instructions import parse_evaluate, parse_train
from clients.reply import build_reply
from clients.roles import profile
from clients.student import local_round
from common import keys
from common.config import RunConfig
from common.federation import load_federation
from common.models import build_model
from common.training import TrainSettings, accuracy

STUDENT_STATE = "student"

app = ClientApp()


def _identity(context: Context) -> tuple[RunConfig, int, str]:
    cfg = RunConfig.from_mapping(context.run_config)
    torch.set_num_threads(int(context.node_config.get("num-threads", 1)))
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    role = str(context.node_config.get(keys.NODE_ROLE, cfg.role_of(partition_id)))
    return cfg, partition_id, role


def _load_student(context: Context, role: str, bands: int, classes: int) -> nn.Module | None:
    saved = context.state.get(STUDENT_STATE)
    if not isinstance(saved, ArrayRecord):
        return None
    student = build_model(profile(role).student, bands, classes)
    student.load_state_dict(saved.to_torch_state_dict())
    return student


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg, partition_id, role = _identity(context)
    prof = profile(role)

    fed = load_federation(cfg)
    task = parse_train(msg, fed.num_classes, len(fed.partition.reference))
    fed = fed.with_stats(task.stats)
    train_split, holdout = fed.client_splits(partition_id, cfg.holdout_fraction, cfg.seed)

    student = _load_student(context, role, fed.spec.num_bands, fed.num_classes) or build_model(
        prof.student, fed.spec.num_bands, fed.num_classes
    )
    result = local_round(
        student,
        train_split,
        holdout,
        fed.reference_images(task.indices),
        task.targets,
        TrainSettings(
            epochs=prof.local_epochs,
            batch_size=cfg.batch_size,
            learning_rate=prof.learning_rate,
            seed=cfg.seed * 1000 + task.server_round,
        ),
        temperature=task.temperature,
        kd_weight=task.kd_weight,
    )
    context.state[STUDENT_STATE] = ArrayRecord(student.state_dict())
    reply = build_reply(
        result.probs,
        task.indices,
        fed.num_classes,
        task.codec,
        role,
        {
            keys.NUM_EXAMPLES: result.num_examples,
            keys.TRAIN_LOSS: result.train_loss,
            keys.LOCAL_ACCURACY: result.local_accuracy,
        },
        topk=task.topk,
    )
    return Message(reply, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Score the student this client would deploy on the common test split (simulation)."""
    cfg, _, role = _identity(context)
    task = parse_evaluate(msg)
    fed = load_federation(cfg).with_stats(task.stats)
    student = _load_student(context, role, fed.spec.num_bands, fed.num_classes)
    metrics: dict[str, int | float | list[int] | list[float]] = {keys.NUM_EXAMPLES: 0}
    if student is not None:  # a client never sampled for training has no student to score
        test = fed.split(fed.partition.test)
        metrics = {
            keys.NUM_EXAMPLES: len(test),
            keys.TEST_ACCURACY: accuracy(student, test.x, test.y),
        }
    content = RecordDict(
        {keys.METRICS: MetricRecord(metrics), keys.INFO: ConfigRecord({keys.ROLE: role})}
    )
    return Message(content, reply_to=msg)
