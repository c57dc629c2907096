"""One client's round: distil the local student towards the received targets, then predict.

No Flower record in or out: takes the decoded instruction, tensors and arrays, returns soft
predictions and metrics. The only array that leaves is the prediction on exactly the requested
reference indices (after :func:`shared_predictions`), plus, in statistics mode, the shard's
class statistics (:func:`shard_statistics`).

With ``digest_epochs`` the round ends, after the prediction, with distillation-only passes
over the received targets (FedMD's "digest" after its "revisit"): the reply still carries
what the private shard taught, while the student the client keeps and deploys ends on the
federation's knowledge instead of on a shard that may hold one or two classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from clients import resident
from clients.attacks import Attack, is_attacker, poison, poison_labels
from clients.instructions import TrainInstruction
from clients.node import Node
from clients.privacy import privatise
from clients.timing import PREDICT, TRAIN, part
from common.bands import DATASETS
from common.class_stats import STATISTICS_BACKBONE, ClassStats, features
from common.config import RunConfig
from common.errors import DataNotFoundError
from common.federation import Federation, Split
from common.precision import use_bf16
from common.training import TrainSettings, accuracy, fit, predict_proba


@dataclass(frozen=True)
class LocalResult:
    probs: np.ndarray  # (len(requested), C)
    num_examples: int
    train_loss: float
    local_accuracy: float
    train_samples: int = 0  # samples through a training step (forward and backward)


def round_seed(seed: int, server_round: int) -> int:
    """The training seed of a client's local round (FedKD and FedAvg alike)."""
    return seed * 1000 + server_round


def check_shard(node: Node, train: Split) -> None:
    """A client without training tiles leaves the round with an error saying so."""
    if len(train) == 0:
        raise DataNotFoundError(
            f"client {node.partition_id} ({node.role}) has no usable training tiles: it leaves "
            "this round; give it data (or fewer clients per shard pool) to take part"
        )


def fedkd_round(
    node: Node,
    task: TrainInstruction,
    student: nn.Module,
    train: Split,
    holdout: Split,
    reference: torch.Tensor,
) -> LocalResult:
    """The round ``task`` asks for: in statistics mode the ground's head on the frozen student
    (:func:`answer_round`), else distillation on the shard and the targets (:func:`local_round`)."""
    cfg = node.cfg
    if task.send_statistics:
        # Statistics mode: the backbone stays the shared pre-installed one (the statistics
        # are in its feature space); the ground's head for this architecture is deployed.
        result = answer_round(student, task.heads.get(node.arch), holdout, reference)
        return replace(result, num_examples=len(train))
    settings = TrainSettings(
        epochs=cfg.client_epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.client_lr,
        seed=round_seed(cfg.seed, task.server_round),
        logit_adjust=True,
        freeze_bn=cfg.client_bn == "frozen",
        bf16=use_bf16(cfg.precision),
    )
    return local_round(
        student,
        train,
        holdout,
        reference,
        task.targets,
        settings,
        temperature=task.temperature,
        kd_weight=task.kd_weight,
        digest_epochs=cfg.client_digest_epochs,
    )


def _local_accuracy(student: nn.Module, holdout: Split, *, bf16: bool = False) -> float:
    with part(PREDICT):
        if not len(holdout):
            return float("nan")
        return accuracy(student, holdout.x, holdout.y, bf16=bf16)


def local_round(
    student: nn.Module,
    train: Split,
    holdout: Split,
    reference: torch.Tensor,
    targets: np.ndarray,
    settings: TrainSettings,
    temperature: float,
    kd_weight: float,
    digest_epochs: int = 0,
) -> LocalResult:
    """CE on the private shard + kd_weight * T^2 KL(targets || student) on the reference tiles,
    predict, then ``digest_epochs`` passes of T^2 KL alone (the kept student)."""
    if len(reference) != len(targets):
        raise ValueError(f"{len(reference)} reference tiles but {len(targets)} targets")
    # The reference targets set the number of steps; the private shard (often a few dozen
    # tiles of one or two classes) is seen once per epoch, not once per step's full batch.
    steps = max(1, math.ceil(max(len(reference), len(train)) / settings.batch_size))
    hard = max(1, math.ceil(len(train) / steps))
    with part(TRAIN):
        loss = fit(
            student,
            settings,
            train.x,
            train.y,
            reference,
            torch.from_numpy(targets),
            temperature=temperature,
            kd_weight=kd_weight,
            hard_batch_size=hard,
        )
    with part(PREDICT):
        probs = predict_proba(student, reference, bf16=settings.bf16)
    if digest_epochs > 0:
        with part(TRAIN):
            fit(
                student,
                replace(settings, epochs=digest_epochs, seed=settings.seed + 1, logit_adjust=False),
                x_soft=reference,
                soft_targets=torch.from_numpy(targets),
                temperature=temperature,
            )
    samples = settings.epochs * steps * (settings.batch_size + hard)
    samples += digest_epochs * math.ceil(len(reference) / settings.batch_size) * settings.batch_size
    return LocalResult(
        probs=probs,
        num_examples=len(train),
        train_loss=loss,
        train_samples=samples,
        local_accuracy=_local_accuracy(student, holdout, bf16=settings.bf16),
    )


def answer_round(
    student: nn.Module,
    head: tuple[np.ndarray, np.ndarray] | None,
    holdout: Split,
    reference: torch.Tensor,
) -> LocalResult:
    """Statistics mode: install the ground's head (if sent) on the frozen student, predict.

    No training step: what the shard teaches leaves as class statistics, and the model the
    client keeps is its pre-installed backbone with the head fitted on the federation's
    knowledge (server/heads.py)."""
    if head is not None:
        weight, bias = head
        layer = student.head
        if not isinstance(layer, nn.Linear) or tuple(layer.weight.shape) != weight.shape:
            raise ValueError(
                f"the ground's head {weight.shape} does not fit this student's "
                f"{tuple(layer.weight.shape) if isinstance(layer, nn.Linear) else type(layer)}"
            )
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))
    classes = student.head.out_features if isinstance(student.head, nn.Linear) else 0
    with part(PREDICT):
        # the ground asks for no tile in statistics mode (server/strategy.py)
        probs = predict_proba(student, reference) if len(reference) else np.zeros((0, classes))
    return LocalResult(
        probs=probs,
        num_examples=0,
        train_loss=float("nan"),
        local_accuracy=_local_accuracy(student, holdout),
    )


def shared_predictions(
    probs: np.ndarray,
    cfg: RunConfig,
    partition_id: int,
    server_round: int,
    *,
    targets: np.ndarray | None = None,
    truth: np.ndarray | None = None,
) -> np.ndarray:
    """The predictions that leave: an attacker's lie instead (clients/attacks.py), then DP
    noise (clients/privacy.py), drawn from one stream seeded by (seed, partition, round).
    An attacker estimates the honest consensus from the ``targets`` it received and its own
    ``probs``; with ``attack-omniscient``, from the targets and the tiles' ``truth``."""
    rng = np.random.default_rng([cfg.seed, partition_id, server_round])
    attack = _attack(cfg, partition_id)
    kind = attack.playing(partition_id, server_round) if attack is not None else None
    if attack is not None and kind is not None:
        view = probs if targets is None else 0.5 * (np.asarray(targets) + probs)
        if attack.omniscient and truth is not None and targets is not None:
            view = 0.5 * (np.asarray(targets) + np.eye(probs.shape[1])[np.asarray(truth)])
        probs = poison(probs, kind, partition_id, rng, view=view, flip=attack.flip)
    if cfg.dp_noise > 0:
        probs = privatise(probs, cfg.dp_clip, cfg.dp_noise, rng)
    return probs


def reference_truth(fed: Federation, indices: np.ndarray) -> np.ndarray:
    """The true classes of reference tiles (simulation: what an omniscient attacker knows)."""
    truth: np.ndarray = np.asarray(fed.arrays.labels)[fed.partition.reference[indices]]
    return truth


def _attack(cfg: RunConfig, partition_id: int, fed: Federation | None = None) -> Attack | None:
    """This client's attack, if it is one of the attackers (the aim: classes where the fusion
    listens to the clients, ``a_c < discount * n_c``, known to an omniscient one)."""
    if not (cfg.attackers and is_attacker(partition_id, cfg.num_clients, cfg.attackers)):
        return None
    classes = DATASETS[cfg.dataset].classes
    aim: tuple[int, ...] = ()
    if cfg.attack_omniscient and fed is not None:
        labels = np.asarray(fed.arrays.labels)
        held = np.bincount(labels[fed.partition.archive], minlength=len(classes))
        pool = sum(np.bincount(labels[s], minlength=len(classes)) for s in fed.partition.shards)
        aim = tuple(int(c) for c in np.flatnonzero(held < cfg.statistics_discount * pool))
    return Attack.of(cfg, classes, aim)


def claimed(cfg: RunConfig, partition_id: int, server_round: int, count: int) -> int:
    """The evidence a client claims for ``count`` tiles in ``server_round`` (an attacker's
    times attack-scale, once it lies: a sleeper's honest rounds claim what it holds)."""
    attack = _attack(cfg, partition_id)
    if attack is None or attack.playing(partition_id, server_round) is None:
        return count
    return int(round(count * attack.scale))


def statistics_due(cfg: RunConfig, partition_id: int, server_round: int, sent: int | None) -> bool:
    """Send the shard's class statistics now? Once, the first time (a shard does not change);
    a sleeper attacker once more, the first round it is sampled after turning."""
    if sent is None:
        return True
    attack = _attack(cfg, partition_id)
    return attack is not None and attack.kind == "sleeper" and sent <= attack.after < server_round


def shard_statistics(
    cfg: RunConfig,
    fed: Federation,
    train: Split,
    partition_id: int = -1,
    server_round: int = 0,
    student: nn.Module | None = None,
) -> ClassStats:
    """Class statistics of the shard through the shared backbone (the pre-installed tiny
    student every node holds, frozen), under the eight flips and rotations of each tile.
    An attacker's are computed with the labels its attack gives the tiles (from its deployed
    ``student``'s predictions on them), and weigh attack-scale times its tiles."""
    backbone = resident.preinstalled(cfg, fed, STATISTICS_BACKBONE)
    labels = train.y.numpy()
    attack = _attack(cfg, partition_id, fed)
    kind = attack.playing(partition_id, server_round) if attack is not None else None
    if attack is None or kind is None:
        return ClassStats.of(features(backbone, train.x), labels, fed.num_classes)
    own = predict_proba(student if student is not None else backbone, train.x)
    rng = np.random.default_rng([cfg.seed, partition_id, server_round])
    labels = poison_labels(labels, own, kind, partition_id, rng, flip=attack.flip, aim=attack.aim)
    stats = ClassStats.of(features(backbone, train.x), labels, fed.num_classes)
    f = attack.scale
    return ClassStats(stats.counts * f, stats.sums * f, stats.scatter * f)
