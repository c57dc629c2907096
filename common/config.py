"""The run configuration, parsed once at the app boundary into a frozen dataclass."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from common.bands import DATASETS
from common.codec import Codec
from common.config_rules import RANGES, Invalid, InvalidSettings
from common.errors import ConfigError
from common.models import ZOO
from common.partition import SplitSpec

ROLES = ("satellite", "drone", "ground-station")
# Each platform's own student: what fits a payload computer, a companion board, a server.
ROLE_STUDENTS = {"satellite": "tiny", "drone": "small", "ground-station": "medium"}
AGGREGATIONS = ("mean", "class-weighted", "entropy-reduced", "trimmed-mean", "median")
METHODS = ("fedkd", "fedavg")
CLIENT_INITS = ("pretrained", "scratch")
OPTIMIZERS = ("adam", "sgd")
FUSION_RULES = ("max", "ratio")  # statistics-fusion (server/evidence.py)
FEDAVG_STRATEGIES = ("FedAvg", "FedProx", "FedAdam")  # Flower's own strategies, by class name
BATCH_NORM = ("train", "frozen")
SCHEDULES = ("contact-aware", "synchronous")
SAMPLE_BY = ("node", "client")
ATTACKS = ("random", "inverted", "constant", "mixed")
SPLIT_SHARES = ("reference-fraction", "test-fraction", "archive-fraction")
TYPE_RULES = {int: "must be an integer", float: "must be a number", str: "must be text"}


def _coerce(value: Any, target: type) -> Any:
    """A run-config value (TOML-typed, or a string from ``--set``) as the field's type."""
    if isinstance(value, bool) and target is not str:
        raise TypeError  # true is not 1 round
    if target is int and isinstance(value, float) and not value.is_integer():
        raise ValueError  # 2.5 rounds is a mistake, not 2
    if target is int and isinstance(value, str):
        return int(value.strip())  # int("2.5") is an error too
    return target(value)


def parse_archive_gap(text: str) -> tuple[int, float]:
    """``"3:0.05"`` -> (3, 0.05): how many classes are scarce at the ground, and what share
    of their archive tiles the ground keeps; ``""`` -> (0, 1.0), no gap."""
    text = text.strip()
    if not text:
        return 0, 1.0
    count, sep, keep = text.partition(":")
    try:
        n, share = int(count), float(keep)
    except ValueError:
        n, share = -1, -1.0
    if not sep or n < 1 or not 0 <= share < 1:
        raise ConfigError(
            "must be N:KEEP with N >= 1 scarce classes and KEEP in [0, 1) the share of their "
            "archive tiles the ground keeps, e.g. 3:0.05"
        )
    return n, share


def role_values(
    text: str,
    key: str,
    roles: tuple[str, ...],
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
) -> dict[str, float]:
    """Parse ``"satellite=0.2,drone=0.05"`` (or one number for every role) into role -> value.

    Roles not named are absent (their feature is off). Values must lie in [low, high]
    (or (low, high] with ``low_open``)."""
    text = text.strip()
    if not text:
        return {}
    example = f"e.g. {key}='satellite=0.2,drone=0.05' or {key}='0.1' for every role"
    if "=" not in text:
        items = [(role, text) for role in roles]
    else:
        items = []
        for item in text.split(","):
            role, sep, value = item.partition("=")
            if not sep or not role.strip():
                raise ConfigError(f"{key}: {item.strip()!r} is not ROLE=VALUE ({example})")
            items.append((role.strip(), value))
    out: dict[str, float] = {}
    for role, value in items:
        if role not in ROLES:
            raise ConfigError(f"{key}: unknown role {role!r}: choose from {', '.join(ROLES)}")
        if role in out:
            raise ConfigError(f"{key}: role {role!r} is given twice")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                f"{key}: {value.strip()!r} for {role} is not a number ({example})"
            ) from None
        too_low = number <= low if low_open else number < low
        if not math.isfinite(number) or too_low or (high is not None and number > high):
            bounds = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'}]"
            raise ConfigError(f"{key}: {role}={number:g} is outside {bounds}")
        out[role] = number
    return out


@dataclass(frozen=True)
class RunConfig:
    """Every knob of a federated-distillation run; defaults match ``[tool.flwr.app.config]``."""

    dataset: str = "rgb"
    data_dir: str = ""
    num_rounds: int = 10
    num_clients: int = 20
    alpha: float = 0.5
    seed: int = 42
    fraction_train: float = 0.25
    min_train_clients: int = 2
    reference_per_round: int = 300
    temperature: float = 2.0
    kd_weight: float = 1.0
    teacher_mix: float = 0.5
    teacher_mix_start: float = 0.9
    # Refinement of the teacher from the aggregated knowledge: each round the teacher takes
    # this many passes of ``reference-per-round`` tiles towards K_t (with archive batches), and
    # its new soft labels are the teacher part of the next targets (0: the teacher stays fixed)
    teacher_refine_epochs: int = 0
    teacher_refine_lr: float = 0.0003
    codec: str = "int8"
    topk: int = 3
    aggregation: str = "mean"
    trim: float = 0.2
    roles: str = "satellite,drone,ground-station"
    global_student: str = "small"
    server_epochs: int = 1
    global_pretrain_epochs: int = 4
    teacher_epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.003
    reference_fraction: float = 0.12
    test_fraction: float = 0.12
    archive_fraction: float = 0.24
    holdout_fraction: float = 0.2
    out_dir: str = ""
    round_timeout: float = 600.0
    evaluate_every: int = 0  # clients evaluate on the common test split every N rounds (0: off)
    metrics_address: str = "127.0.0.1:9464"
    metrics_linger: float = 10.0
    method: str = "fedkd"  # fedkd, or the fedavg baseline (Flower's FedAvg, weights travel)
    student: str = ""  # one zoo model on every client; empty: each role's own student
    client_init: str = "pretrained"  # clients start from the ground's pre-installed student
    preinstall_epochs: int = 4
    client_lr: float = 0.0003
    client_epochs: int = 1
    # KD-only passes over the received targets after the reply's predictions are made: the
    # student a client keeps (and deploys) ends on the federation's knowledge, not on its
    # skewed shard (0: off)
    client_digest_epochs: int = 0
    client_bn: str = "frozen"  # keep the pre-installed student's batch-norm statistics
    fedavg_optimizer: str = "adam"
    fedavg_lr: float = 0.0001
    fedavg_epochs: int = 1
    fedavg_bn: str = "train"
    # The baseline's strategy: FedAvg, FedProx (clients add fedprox-mu/2 * |w - w_global|^2)
    # or FedAdam (server-side Adam at rate fedadam-eta on the clients' mean update)
    fedavg_strategy: str = "FedAvg"
    fedprox_mu: float = 0.01
    fedadam_eta: float = 0.001
    test_dir: str = ""  # an external labelled folder to evaluate on instead of the test split
    dp_noise: float = 0.0  # Gaussian noise multiplier on shared predictions (0: no DP)
    dp_clip: float = 1.0  # L2 clip of each prediction row before the noise
    attackers: float = 0.0  # simulation: fraction of Byzantine clients (lowest partition ids)
    attack: str = "mixed"  # random, inverted, constant or mixed
    resume: int = 0  # 1: continue from out-dir/checkpoint.pt (skydistill simulate --resume)
    # Fleet scenario (common/fleet/scenarios/<name>.toml or a path; empty: no contact model)
    scenario: str = ""
    schedule: str = "contact-aware"  # or synchronous: wait for every sampled client
    round_window_minutes: float = 60.0  # contact-aware: simulated minutes per round
    max_staleness: int = 4  # contact-aware: oldest accepted reply, in rounds
    staleness_decay: float = 0.5  # contact-aware: a reply of age a weighs decay ** a
    # Simulated client failures and resources, per role: "satellite=0.2,drone=0.05" or one
    # value for every role ("0.1"); empty: off. See clients/failures.py and docs/scale.md.
    dropout: str = ""  # probability that a sampled client fails the round (error reply)
    straggler_seconds: str = ""  # seconds a client idles before it replies
    cpu_share: str = ""  # cores of a client's processor (threads; below 1: proportionally slower)
    shard_size: int = 0  # >0: each client draws this many tiles from the pool (with replacement)
    # Ground gap "N:KEEP": N classes (chosen by the seed) keep only KEEP of their archive share,
    # the rest goes to the client pool: the ground lacks what the fleet sees (empty: no gap)
    archive_gap: str = ""
    # Class statistics (docs/distillation.md, "Knowledge that a shard carries"): clients also send
    # per-class counts, feature sums and scatter of their tiles through the shared pre-installed
    # tiny student; the ground turns them, with its archive's, into a discriminant whose labels on
    # the reference set are fused with the knowledge per class by evidence (0: off)
    client_statistics: int = 0
    # teacher weight on class c (a_c / n_c: archive / client tiles of class c), server/evidence.py:
    # "max": a_c / max(a_c, discount * n_c), "ratio": a_c / (a_c + discount * n_c)
    statistics_fusion: str = "max"
    statistics_discount: float = 0.5
    statistics_temperature: float = 0.5  # scale of the discriminant's scores before the softmax
    statistics_shrinkage: float = 0.02  # covariance shrinkage towards its mean variance
    # With statistics the ground refits each client architecture's head on frozen features
    # (server/heads.py): full-batch epochs, rate, and the weight of distillation towards the
    # fused knowledge on the reference tiles beside cross-entropy on the archive
    head_epochs: int = 200
    head_lr: float = 0.01
    head_kd_weight: float = 1.0
    trace_dir: str = ""  # bench: clients save each train message they receive here
    # Who a round samples: Flower node ids ("node"), or the clients behind them ("client":
    # asked once by a QUERY message), so two runs with one seed train the same clients.
    sample_by: str = "node"

    def __post_init__(self) -> None:
        problems = [*self._choice_problems(), *self._range_problems()]
        if problems:
            raise InvalidSettings(problems)
        self.split_spec()  # cannot fail now; the per-role values are checked here
        self.dropout_by_role()
        self.straggler_by_role()
        self.cpu_share_by_role()

    def _choice_problems(self) -> list[Invalid]:
        choices: dict[str, tuple[str, tuple[str, ...]]] = {
            "dataset": (self.dataset, tuple(DATASETS)),
            "codec": (self.codec, tuple(c.value for c in Codec)),
            "aggregation": (self.aggregation, AGGREGATIONS),
            "method": (self.method, METHODS),
            "client-init": (self.client_init, CLIENT_INITS),
            "fedavg-optimizer": (self.fedavg_optimizer, OPTIMIZERS),
            "fedavg-bn": (self.fedavg_bn, BATCH_NORM),
            "fedavg-strategy": (self.fedavg_strategy, FEDAVG_STRATEGIES),
            "client-bn": (self.client_bn, BATCH_NORM),
            "attack": (self.attack, ATTACKS),
            "schedule": (self.schedule, SCHEDULES),
            "sample-by": (self.sample_by, SAMPLE_BY),
            "statistics-fusion": (self.statistics_fusion, FUSION_RULES),
            "global-student": (self.global_student, tuple(ZOO)),
        }
        problems = [
            Invalid(key, value, f"must be one of {', '.join(allowed)}")
            for key, (value, allowed) in choices.items()
            if value not in allowed
        ]
        if self.student and self.student not in ZOO:
            problems.append(
                Invalid("student", self.student, f"must be one of {', '.join(ZOO)} or empty")
            )
        unknown = [r for r in self.role_cycle if r not in ROLES]
        if unknown or not self.role_cycle:
            problems.append(
                Invalid(
                    "roles",
                    self.roles,
                    f"must be a comma-separated list of {', '.join(ROLES)}"
                    + (f" (unknown role {unknown[0]!r})" if unknown else ""),
                )
            )
        return problems

    def _range_problems(self) -> list[Invalid]:
        problems = []
        for f in fields(self):
            key = f.name.replace("_", "-")
            value = getattr(self, f.name)
            bounds = RANGES.get(key)
            if bounds is not None and not bounds.holds(value):
                problems.append(Invalid(key, value, bounds.rule(isinstance(value, int))))
        try:
            parse_archive_gap(self.archive_gap)
        except ConfigError as exc:
            problems.append(Invalid("archive-gap", self.archive_gap, str(exc)))
        shares = {k: getattr(self, k.replace("-", "_")) for k in SPLIT_SHARES}
        total = sum(shares.values())
        if all(RANGES[k].holds(v) for k, v in shares.items()) and total >= 1:
            problems.append(Invalid(" + ".join(shares), round(total, 6), "must be below 1"))
        if self.client_statistics and self.dp_noise > 0:
            problems.append(
                Invalid(
                    "client-statistics",
                    self.client_statistics,
                    "must be 0 with dp-noise > 0: the noise privatises soft predictions, not "
                    "class statistics (set dp-noise = 0, or client-statistics = 0)",
                )
            )
        return problems

    @property
    def role_cycle(self) -> tuple[str, ...]:
        return tuple(r.strip() for r in self.roles.split(",") if r.strip())

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
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown run-config keys: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        problems: list[Invalid] = []
        for key, value in values.items():
            f = known[key]
            target = type(getattr(cls, f.name))
            try:
                kwargs[f.name] = _coerce(value, target)
            except (TypeError, ValueError):
                problems.append(Invalid(key, value, TYPE_RULES.get(target, "has the wrong type")))
        if problems:
            raise InvalidSettings(problems)
        return cls(**kwargs)

    def to_mapping(self) -> dict[str, Any]:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}
