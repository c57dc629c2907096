"""Every run-config setting with its one default and its help text: the frozen ``RunConfig``
that a run's config is parsed into once, at the app boundary.

Each field is a ``setting(default, help)`` (``config_fields``), read back as ``SETTINGS``: the
command-line flags that mirror a key take their default and help from there (``cli/options``),
and ``[tool.flwr.app.config]`` and the README's run-config table are tested against it. What
each value must be is in ``config_rules``, how text becomes a value in ``config_parse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from common.codec import Codec
from common.config_fields import Setting, setting, table
from common.config_parse import (
    ROLES,
    TYPE_RULES,
    coerce,
    parse_archive_gap,
    role_cycle,
    role_values,
)
from common.config_rules import FUSION_RULES, Invalid, InvalidSettings, problems
from common.errors import ConfigError
from common.partition import SplitSpec

__all__ = [
    "FUSION_RULES",
    "ROLES",
    "ROLE_STUDENTS",
    "SETTINGS",
    "RunConfig",
    "Setting",
    "parse_archive_gap",
    "role_values",
]

# Each platform's own student: what fits a payload computer, a companion board, a server.
ROLE_STUDENTS = {"satellite": "tiny", "drone": "small", "ground-station": "medium"}

_PER_ROLE = "simulation, per role ('satellite=0.2,drone=0.05', or one value for every role): "


@dataclass(frozen=True)
class RunConfig:
    """Every knob of a federated-distillation run; defaults match ``[tool.flwr.app.config]``."""

    dataset: str = setting(
        "rgb", "rgb: EuroSAT RGB JPEGs (3 bands); ms: EuroSAT MS GeoTIFFs (13 bands)"
    )
    data_dir: str = setting(
        "", "data root holding eurosat-rgb/ and eurosat-ms/", "$SKYDISTILL_DATA or ../shared/data"
    )
    num_rounds: int = setting(10, "federated rounds")
    num_clients: int = setting(20, "number of clients, one data shard each")
    alpha: float = setting(0.5, "Dirichlet concentration of the client label split (0 = IID)")
    seed: int = setting(42, "seed of the data split, client sampling and model initialisation")
    fraction_train: float = setting(
        0.25, "share of the connected clients a round samples (at least min-train-clients)"
    )
    min_train_clients: int = setting(2, "fewest clients a round samples")
    reference_per_round: int = setting(300, "reference tiles whose targets travel each round")
    temperature: float = setting(2.0, "distillation temperature")
    kd_weight: float = setting(1.0, "weight of the distillation term in a client's loss")
    teacher_mix: float = setting(0.5, "weight of the teacher in the last round's targets")
    teacher_mix_start: float = setting(
        0.9, "weight of the teacher in the first round's targets (linear to teacher-mix)"
    )
    teacher_refine_epochs: int = setting(
        0,
        "each round, passes of the teacher over reference-per-round tiles towards the aggregated "
        "knowledge (with archive batches); its new soft labels are the teacher part of the next "
        "targets (0: the teacher stays fixed)",
    )
    teacher_refine_lr: float = setting(0.0003, "learning rate of the teacher's refinement")
    codec: str = setting(
        "int8", "soft labels on the wire: fp32, fp16, int8 (per-row scale) or topk (k largest)"
    )
    topk: int = setting(3, "classes the topk codec keeps per row")
    aggregation: str = setting(
        "mean",
        "fusion of the clients' predictions (or statistics): mean (example-weighted), "
        "class-weighted, entropy-reduced, trimmed-mean, median or history (by trust)",
    )
    trim: float = setting(0.2, "trimmed-mean: share cut from each end")
    history_base: str = setting("mean", "history: the rule applied to the clients it trusts")
    trust_threshold: float = setting(
        0.5, "trust under which a client is flagged (history: left out)"
    )
    trust_memory: float = setting(0.4, "weight of a client's past trust against its new agreement")
    roles: str = setting("satellite,drone,ground-station", "roles assigned to clients in turn")
    global_student: str = setting("small", "architecture of the server's global student")
    server_epochs: int = setting(1, "passes of the global student over the reference set a round")
    global_pretrain_epochs: int = setting(
        4, "pre-training epochs of the global student on the archive and the teacher (0: none)"
    )
    teacher_epochs: int = setting(18, "training epochs of the teacher on the archive")
    teacher_coarse_fraction: float = setting(
        0.67,
        "share of the teacher's epochs (the first ones, rounded down) that see the tiles at "
        "half resolution: a quarter of the arithmetic, about half the time of a full-size epoch "
        "on a 2-core CPU (progressive resizing; 0: none)",
    )
    batch_size: int = setting(64, "batch size of the training loops")
    precision: str = setting(
        "auto",
        "arithmetic of the training loops: bf16 (autocast, 1.5-2x faster on CPUs with "
        "AVX-512 BF16 or AMX), fp32, or auto (bf16 where this CPU has them)",
    )
    learning_rate: float = setting(
        0.003, "learning rate (AdamW, one-cycle) of the teacher and the pre-training"
    )
    reference_fraction: float = setting(0.12, "share of the tiles in the public reference set")
    test_fraction: float = setting(0.12, "share of the tiles in the common test split")
    archive_fraction: float = setting(0.24, "share of the tiles in the ground's labelled archive")
    holdout_fraction: float = setting(0.2, "share of each client's shard held out to validate")
    out_dir: str = setting(
        "", "folder of report.json, the checkpoint and the students", "no files written"
    )
    round_timeout: float = setting(600.0, "seconds a round waits for replies")
    max_in_flight: int = setting(
        0,
        "messages of a round unanswered at once; the rest wait for a reply (0: all at once). "
        "On Flower's simulation engine with thousands of registered clients, a few per actor "
        "(docs/scale.md)",
    )
    evaluate_every: int = setting(
        0,
        "every N rounds (and after the last) clients score their own students on the common "
        "test split (0: off)",
    )
    metrics_address: str = setting(
        "127.0.0.1:9464", "address of the Prometheus exporter (empty: off)"
    )
    metrics_linger: float = setting(
        10.0,
        "after the last round, at most these seconds waiting for Prometheus to scrape the "
        "final figures (none if nobody scraped the exporter during the run)",
    )
    method: str = setting(
        "fedkd", "fedkd, or fedavg: the baseline (Flower's FedAvg on one student, weights travel)"
    )
    student: str = setting("", "one zoo model on every client", "each role's own student")
    client_init: str = setting(
        "pretrained",
        "pretrained: clients start from the ground's pre-installed student; scratch: random",
    )
    preinstall_epochs: int = setting(4, "training epochs of the pre-installed students")
    student_coarse_fraction: float = setting(
        0.5,
        "share of the epochs of the global student's pre-training and of each pre-installed "
        "student (the first ones, rounded down) that see the tiles at half resolution, as the "
        "teacher's: a student's half-size epoch costs about a quarter of a full one here (0: none)",
    )
    client_lr: float = setting(0.0003, "learning rate of a client's local round")
    client_epochs: int = setting(1, "a client's passes over the reference targets a round")
    client_digest_epochs: int = setting(
        0,
        "after the reply's predictions, KD-only passes over the received targets: the student a "
        "client keeps (and deploys) ends on the federation's knowledge (0: off)",
    )
    client_bn: str = setting(
        "frozen", "frozen: keep the pre-installed student's batch-norm statistics; train: update"
    )
    fedavg_optimizer: str = setting("adam", "the baseline's local optimiser")
    fedavg_lr: float = setting(0.0001, "the baseline's local learning rate")
    fedavg_epochs: int = setting(1, "the baseline's local epochs")
    fedavg_bn: str = setting("train", "the baseline's batch-norm statistics: train or frozen")
    fedavg_strategy: str = setting(
        "FedAvg",
        "the baseline's Flower strategy: FedAvg, FedProx (clients add fedprox-mu/2 * "
        "|w - w_global|^2) or FedAdam (server-side Adam at rate fedadam-eta on the mean update)",
    )
    fedprox_mu: float = setting(0.01, "FedProx: weight of the proximal term")
    fedadam_eta: float = setting(0.001, "FedAdam: the server's learning rate")
    test_dir: str = setting(
        "", "labelled folder (<Class>/<tile>) to evaluate on", "the internal test split"
    )
    dp_noise: float = setting(0.0, "Gaussian noise multiplier on shared predictions (0: no DP)")
    dp_clip: float = setting(1.0, "L2 clip of each prediction row before the noise")
    attackers: float = setting(
        0.0, "simulation: fraction of Byzantine clients (lowest partition ids)"
    )
    attack: str = setting(
        "mixed",
        "what the attackers send: random, inverted, constant, mixed (the three in turn), lma, "
        "cpa, label-flip or sleeper (clients/attacks.py)",
    )
    attack_scale: float = setting(
        1.0, "evidence an attacker claims (examples, class counts, statistics), times its own"
    )
    attack_flip: str = setting(
        "", "label-flip: SOURCE:TARGET classes (names or indices)", "each attacker's own pick"
    )
    attack_after: int = setting(3, "sleeper: rounds it is honest before it turns to lma")
    attack_omniscient: int = setting(
        0, "1: attackers know the truth the simulation holds, and aim at the archive's gaps"
    )
    resume: int = setting(
        0, "1: continue from out-dir/checkpoint.pt (skydistill simulate --resume)"
    )
    scenario: str = setting(
        "",
        "fleet scenario (small, leo50, fleet10k or a TOML path): rounds follow its contact "
        "windows and the scenario sets the client count (docs/fleets.md)",
        "none, no contact model",
    )
    schedule: str = setting(
        "contact-aware",
        "with a scenario: work only for clients in contact in each round's window, or wait for "
        "every sampled client to receive and return",
    )
    round_window_minutes: float = setting(60.0, "contact-aware: simulated minutes per round")
    max_staleness: int = setting(4, "contact-aware: oldest accepted reply, in rounds")
    staleness_decay: float = setting(0.5, "contact-aware: a reply of age a weighs decay ** a")
    dropout: str = setting("", _PER_ROLE + "probability that a sampled client fails", "off")
    straggler_seconds: str = setting("", _PER_ROLE + "seconds a client idles, then replies", "off")
    cpu_share: str = setting(
        "", _PER_ROLE + "cores of a client's processor (below 1: slower in proportion)", "off"
    )
    shard_size: int = setting(
        0, "N > 0: each client draws N tiles of the client pool (0: disjoint shards)"
    )
    archive_gap: str = setting(
        "",
        "N:KEEP: N classes, chosen by the seed, keep only KEEP of their archive tiles (the rest "
        "goes to the client pool): the ground lacks what the fleet sees",
        "no gap",
    )
    client_statistics: int = setting(
        0,
        "1: clients also send per-class counts, feature sums and scatter of their tiles, which "
        "the ground fuses with the knowledge per class (docs/distillation.md)",
    )
    statistics_fusion: str = setting(
        "max",
        "the teacher's weight on class c (a_c, n_c: archive and client tiles of c); max: a_c / "
        "max(a_c, discount * n_c); ratio: a_c / (a_c + discount * n_c)",
    )
    statistics_discount: float = setting(0.5, "statistics-fusion: weight of a client tile")
    statistics_temperature: float = setting(0.5, "scale of the discriminant's scores")
    statistics_shrinkage: float = setting(0.02, "covariance shrinkage to its mean variance")
    head_epochs: int = setting(200, "with statistics: full-batch epochs of each head's refit")
    head_lr: float = setting(0.01, "learning rate of the heads' refit")
    head_kd_weight: float = setting(
        1.0, "weight of distillation on the reference tiles beside the archive's cross-entropy"
    )
    trace_dir: str = setting("", "benchmarks: clients save each train message here", "off")
    distil_cache: str = setting(
        "",
        "benchmarks: folder where the global student's round updates are kept, keyed by all "
        "they depend on (weights, optimiser state, targets, round, data): runs of one benchmark "
        "that reach a round with the same inputs compute it once (server/distil_cache.py)",
        "off",
    )
    sample_by: str = setting(
        "node",
        "what a round samples: Flower node ids (node), or the clients behind them (client: "
        "asked once by a QUERY message), so that two runs with one seed train the same clients",
    )

    def __post_init__(self) -> None:
        found = problems(self.to_mapping())
        if found:
            raise InvalidSettings(found)
        self.split_spec()  # cannot fail now; the per-role values are checked here
        self.dropout_by_role()
        self.straggler_by_role()
        self.cpu_share_by_role()

    @property
    def role_cycle(self) -> tuple[str, ...]:
        return role_cycle(self.roles)

    @property
    def codec_mode(self) -> Codec:
        return Codec.parse(self.codec)

    def split_spec(self) -> SplitSpec:
        return SplitSpec(
            reference_fraction=self.reference_fraction,
            test_fraction=self.test_fraction,
            archive_fraction=self.archive_fraction,
            num_clients=self.num_clients,
            alpha=self.alpha,
            seed=self.seed,
            shard_size=self.shard_size,
            gap_classes=self.archive_gap_spec[0],
            gap_keep=self.archive_gap_spec[1],
        )

    @property
    def archive_gap_spec(self) -> tuple[int, float]:
        """``archive-gap`` as (classes, kept share); (0, 1.0) without a gap."""
        return parse_archive_gap(self.archive_gap)

    def dropout_by_role(self) -> dict[str, float]:
        return role_values(self.dropout, "dropout", self.role_cycle, low=0.0, high=1.0)

    def straggler_by_role(self) -> dict[str, float]:
        return role_values(self.straggler_seconds, "straggler-seconds", self.role_cycle, low=0.0)

    def cpu_share_by_role(self) -> dict[str, float]:
        return role_values(
            self.cpu_share, "cpu-share", self.role_cycle, low=0.0, low_open=True, high=64.0
        )

    def arch_of(self, role: str) -> str:
        """The student architecture a client of ``role`` trains."""
        if role not in ROLE_STUDENTS:
            raise ConfigError(f"unknown role {role!r}: choose one of {', '.join(ROLE_STUDENTS)}")
        return self.student or ROLE_STUDENTS[role]

    def role_of(self, partition_id: int) -> str:
        return self.role_cycle[partition_id % len(self.role_cycle)]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunConfig:
        """Parse Flower's run config (kebab-case keys); unknown keys are an error."""
        known = SETTINGS
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown run-config keys: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        bad: list[Invalid] = []
        for key, value in values.items():
            s = known[key]
            try:
                kwargs[s.name] = coerce(value, s.type)
            except (TypeError, ValueError):
                bad.append(Invalid(key, value, TYPE_RULES.get(s.type, "has the wrong type")))
        if bad:
            raise InvalidSettings(bad)
        return cls(**kwargs)

    def with_values(self, values: Mapping[str, Any]) -> RunConfig:
        """This config with ``values`` (kebab-case keys, typed or text) on top, parsed and
        checked as ``from_mapping`` does: the one way a layer of settings is merged."""
        return RunConfig.from_mapping({**self.to_mapping(), **values})

    def to_mapping(self) -> dict[str, Any]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}


# Every run-config key, in field order, with its type, default and help.
SETTINGS = table(RunConfig)
