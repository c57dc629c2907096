"""The distillation server's objects, built from the parsed run config and the ground segment:
the strategy (contact-aware when a scenario is set), the teacher's refiner, the round configs.
"""

from __future__ import annotations

import copy
from typing import Any

from flwr.app import ConfigRecord
from flwr.serverapp import Grid
from torch import nn

from common import keys
from common.class_stats import STATISTICS_BACKBONE, GroundFeatures, features
from common.config import ROLE_STUDENTS, RunConfig
from common.federation import Federation
from common.model_cache import cached_predictions
from common.preinstalled import cache_entry, preinstalled_student
from server.aggregation import Rule
from server.contact_fedkd import ContactFedKD
from server.evidence import StatisticsKnowledge
from server.fleet import build_schedule, discover_clients
from server.ground import GroundSegment
from server.heads import ArchHead, DeployedHeads
from server.knowledge import Knowledge
from server.statistics_rules import ruled_statistics
from server.strategy import FedKD
from server.teacher import TeacherRefiner


def build_strategy(cfg: RunConfig, ground: GroundSegment, grid: Grid) -> FedKD:
    """FedKD on the ground's knowledge, :class:`ContactFedKD` when ``scenario`` is set; the
    nodes are asked who they are when the strategy needs it (scenario clients, sampling by
    client, or the heads of each node's architecture)."""
    knowledge = Knowledge(
        ground.teacher_probs,
        cfg.teacher_mix,
        mix_start=cfg.teacher_mix_start,
        num_rounds=cfg.num_rounds,
    )
    statistics, heads = statistics_and_heads(cfg, ground) if cfg.client_statistics else (None, None)
    options = {**strategy_options(cfg), "statistics": statistics, "heads": heads}
    strategy = (
        ContactFedKD(knowledge, schedule=build_schedule(cfg), **options)
        if cfg.scenario
        else FedKD(knowledge, **options)
    )
    if cfg.scenario or strategy.sample_by_client or heads is not None:
        directory = discover_clients(grid, cfg.num_clients)
        archs = {
            n: cfg.arch_of(role) for n, role in directory.roles.items() if role in ROLE_STUDENTS
        }
        strategy.use_directory(directory.clients, archs)
    return strategy


def strategy_options(cfg: RunConfig) -> dict[str, Any]:
    """FedKD's keyword arguments that the run config sets (its defaults are these of
    ``RunConfig()``), besides the knowledge, the statistics and the heads."""
    return {
        "codec": cfg.codec_mode,
        "rule": Rule.parse(cfg.aggregation),
        "trim": cfg.trim,
        "topk": cfg.topk,
        "fraction_train": cfg.fraction_train,
        "min_train_nodes": cfg.min_train_clients,
        "min_available_nodes": cfg.min_train_clients,
        "reference_per_round": cfg.reference_per_round,
        "seed": cfg.seed,
        "evaluate_every": cfg.evaluate_every,
        "num_rounds": cfg.num_rounds,
        "sample_by_client": cfg.sample_by == "client",
        "history_base": Rule.parse(cfg.history_base),
        "trust_threshold": cfg.trust_threshold,
        "trust_memory": cfg.trust_memory,
    }


def statistics_and_heads(
    cfg: RunConfig, ground: GroundSegment
) -> tuple[StatisticsKnowledge, DeployedHeads]:
    """The archive's class statistics through the shared backbone, and the heads the ground
    fits for the architectures of the run's roles; each backbone's features computed once
    (and cached: :func:`ground_features`)."""
    archs = sorted({cfg.arch_of(role) for role in cfg.role_cycle})
    models = {a: preinstalled_student(cfg, ground.fed, a) for a in {*archs, STATISTICS_BACKBONE}}
    feats = {a: ground_features(cfg, ground, a, m) for a, m in models.items()}
    heads = DeployedHeads(
        {a: ArchHead(models[a], feats[a]) for a in archs},
        epochs=cfg.head_epochs,
        lr=cfg.head_lr,
        kd_weight=cfg.head_kd_weight,
    )
    # pooled by the run's aggregation rule (server/statistics_rules.py)
    statistics = ruled_statistics(cfg, feats[STATISTICS_BACKBONE], ground.fed.num_classes)
    return statistics, heads


def ground_features(
    cfg: RunConfig, ground: GroundSegment, arch: str, model: nn.Module
) -> GroundFeatures:
    """The pre-installed ``arch`` backbone's features of the archive (every view) and of the
    reference tiles, cached beside its weights (:func:`common.model_cache.cached_predictions`,
    keyed by the weights file's and the tiles' bytes): 32,640 archive views through a
    backbone cost 20-50 s on 2 cores, recomputed otherwise by every run in statistics mode."""
    student, fed = ground.student, ground.fed
    name, entry = cache_entry(cfg, fed, arch)
    archive = cached_predictions(
        name, fed, entry, student.archive.x,
        lambda: features(model, student.archive.x), kind="features-views",
    )  # fmt: skip
    reference = cached_predictions(
        name, fed, entry, student.reference,
        lambda: features(model, student.reference, views=False)[0], kind="features",
    )  # fmt: skip
    return GroundFeatures(archive, student.archive.y.numpy(), reference)


def build_refiner(cfg: RunConfig, ground: GroundSegment) -> TeacherRefiner | None:
    """The refiner of a copy of the teacher (``teacher-refine-epochs`` > 0), else None."""
    if cfg.teacher_refine_epochs <= 0:
        return None
    student = ground.student
    return TeacherRefiner(
        copy.deepcopy(ground.teacher), cfg, student.archive, student.reference, student.test
    )


def round_configs(cfg: RunConfig, fed: Federation) -> tuple[ConfigRecord, ConfigRecord]:
    """What every train and every evaluate instruction carries besides the round's own."""
    norm = {keys.NORM_MEAN: list(fed.stats.mean), keys.NORM_STD: list(fed.stats.std)}
    train = ConfigRecord({keys.TEMPERATURE: cfg.temperature, keys.KD_WEIGHT: cfg.kd_weight, **norm})
    return train, ConfigRecord({k: list(v) for k, v in norm.items()})
