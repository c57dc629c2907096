"""The flags of each ``skydistill bench`` command that mirror a run-config key.

Per command: the flags (flag -> key), and the keys it sets itself, which ``--set`` cannot
change (and why). The defaults they show and run with are the bench's run config
(``simulations/bench/settings.py``). Plain data, cheap to import: ``cli/bench.py`` builds the
parsers from it and ``cli/bench_args.py`` merges it with ``--set``.
"""

from __future__ import annotations

DISTILL_FLAGS = {
    "--clients": "num-clients",
    "--alpha": "alpha",
    "--rounds": "num-rounds",
    "--seed": "seed",
    "--test-dir": "test-dir",
    "--ground-gap": "archive-gap",
}
_PER_METHOD = "bench distill sets it per method (see bench distill --help)"
_NO_EXPORTER = "benchmarks run without the Prometheus exporter"
DISTILL_FIXED = {
    "method": _PER_METHOD,
    "student": _PER_METHOD,
    "fedavg-optimizer": "the FedAvg search sets it",
    "fedavg-lr": "the FedAvg search sets it",
    "fedavg-bn": "the FedAvg search sets it",
    "fedavg-epochs": "the FedAvg search sets it",
    "evaluate-every": "bench distill scores the clients itself",
    "metrics-address": _NO_EXPORTER,
    "metrics-linger": _NO_EXPORTER,
}
ROBUST_FLAGS = {
    "--clients": "num-clients",
    "--rounds": "num-rounds",
    "--alpha": "alpha",
    "--seed": "seed",
    "--attack": "attack",
    "--attack-scale": "attack-scale",
    "--ground-gap": "archive-gap",
}
ROBUST_FIXED = {
    "aggregation": "bench robust runs every rule of --rules",
    "attackers": "use --attackers (a number of clients)",
    "metrics-address": _NO_EXPORTER,
    "metrics-linger": _NO_EXPORTER,
}
ONBOARD_FLAGS = {"--data-dir": "data-dir"}
FLEET_FLAGS = {
    "--scenario": "scenario",
    "--seed": "seed",
    "--window-minutes": "round-window-minutes",
    "--max-staleness": "max-staleness",
    "--decay": "staleness-decay",
}
FLEET_FIXED = {
    "schedule": "bench fleet runs both schedules",
    "num-clients": "the scenario sets the client count",
    "num-rounds": "set from --hours and --aware-hours",
    "fraction-train": "set from --per-round",
    "min-train-clients": "set from --per-round",
}
SCALE_FLAGS = {
    "--clients": "num-clients",
    "--rounds": "num-rounds",
    "--shard-size": "shard-size",
    "--reference-per-round": "reference-per-round",
    "--seed": "seed",
    "--data-dir": "data-dir",
}
SCALE_FIXED = {
    "fraction-train": "set from --per-round",
    "min-train-clients": "set from --per-round",
    "trace-dir": "bench scale records the trace itself",
    "evaluate-every": "bench scale times training rounds only",
    "metrics-address": _NO_EXPORTER,
    "metrics-linger": _NO_EXPORTER,
}
DATA_DIR = "$SKYDISTILL_DATA or ../shared/data"
