"""The skydistill ClientApp: decode the targets, run a local round, send soft predictions."""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, Context, Message
from flwr.clientapp import ClientApp

from clients.instructions import parse_train
from clients.reply import build_reply
from clients.roles import profile
from clients.student import local_round
from common import keys
from common.config import RunConfig
from common.federation import load_federation
from common.models import build_model
from common.training import TrainSettings

STUDENT_STATE = "student"

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = RunConfig.from_mapping(context.run_config)
    torch.set_num_threads(int(context.node_config.get("num-threads", 1)))
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    role = str(context.node_config.get(keys.NODE_ROLE, cfg.role_of(partition_id)))
    prof = profile(role)

    fed = load_federation(cfg)
    task = parse_train(msg, fed.num_classes, len(fed.partition.reference))
    fed = fed.with_stats(task.stats)
    train_split, holdout = fed.client_splits(partition_id, cfg.holdout_fraction, cfg.seed)

    student = build_model(prof.student, fed.spec.num_bands, fed.num_classes)
    saved = context.state.get(STUDENT_STATE)
    if isinstance(saved, ArrayRecord):
        student.load_state_dict(saved.to_torch_state_dict())
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
