from __future__ import annotations

import pickle
import tomllib
from dataclasses import fields

import pytest

from common.config import RunConfig
from common.config_rules import RANGES, InvalidSettings, Range
from common.errors import ConfigError
from common.settings import PROJECT_ROOT


def test_dataclass_defaults_equal_pyproject_run_config() -> None:
    app_config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["flwr"][
        "app"
    ]["config"]
    assert app_config == RunConfig().to_mapping()
    assert RunConfig.from_mapping(app_config) == RunConfig()


def test_parses_kebab_case_and_converts_types() -> None:
    cfg = RunConfig.from_mapping({"num-rounds": 3, "alpha": 1, "codec": "fp16"})
    assert cfg.num_rounds == 3 and cfg.alpha == 1.0 and cfg.codec == "fp16"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num-rundes": 3}, "unknown run-config keys: num-rundes"),
        ({"num-rounds": "many"}, "num-rounds must be an integer, got 'many'"),
        ({"num-rounds": 2.5}, "num-rounds must be an integer, got 2.5"),
        ({"num-clients": "2.5"}, "num-clients must be an integer, got '2.5'"),
        ({"num-clients": True}, "num-clients must be an integer, got True"),
        ({"alpha": "lots"}, "alpha must be a number, got 'lots'"),
        ({"num-rounds": 0}, "num-rounds must be at least 1, got 0"),
        ({"teacher-mix": 1.5}, r"teacher-mix must be in \[0, 1\], got 1.5"),
        ({"codec": "bf16"}, "codec must be one of fp32, fp16, int8, topk, got 'bf16'"),
        ({"dataset": "sar"}, "dataset must be one of"),
        ({"roles": "satellite,balloon"}, "unknown role 'balloon'"),
        ({"roles": ""}, "roles must be a comma-separated list of"),
        ({"reference-fraction": 0.6, "test-fraction": 0.6}, "must be below 1, got 1.44"),
        ({"global-student": "huge"}, "global-student must be one of"),
        ({"method": "fedprox"}, "method must be one of fedkd, fedavg"),
        ({"student": "huge"}, "student must be one of"),
        ({"client-init": "random"}, "client-init must be one of"),
        ({"fedavg-bn": "off"}, "fedavg-bn must be one of"),
        ({"aggregation": "max"}, "aggregation must be one of"),
    ],
)
def test_bad_values_are_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_mapping(values)


def test_roles_cycle_over_partitions() -> None:
    cfg = RunConfig(roles="satellite,drone")
    assert [cfg.role_of(i) for i in range(4)] == ["satellite", "drone", "satellite", "drone"]


def test_each_role_has_its_own_student_unless_one_is_forced() -> None:
    assert RunConfig().arch_of("satellite") == "tiny"
    assert RunConfig().arch_of("ground-station") == "medium"
    assert RunConfig(student="tiny").arch_of("ground-station") == "tiny"
    with pytest.raises(ConfigError, match="unknown role 'balloon'"):
        RunConfig().arch_of("balloon")


def test_fleet_keys_are_checked() -> None:
    cfg = RunConfig.from_mapping({"scenario": "leo50", "schedule": "synchronous"})
    assert (cfg.round_window_minutes, cfg.max_staleness, cfg.staleness_decay) == (60.0, 4, 0.5)
    for bad in ({"schedule": "eventually"}, {"staleness-decay": 0.0}, {"max-staleness": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RunConfig.from_mapping(bad)


NUMERIC = {
    f.name.replace("_", "-")
    for f in fields(RunConfig)
    if type(getattr(RunConfig, f.name)) in (int, float)
}


def test_every_numeric_setting_has_a_range() -> None:
    assert set(RANGES) == NUMERIC


def _outside(bounds: Range, integer: bool) -> float:
    """A value just outside ``bounds``."""
    step = 1 if integer else 0.01
    if bounds.low is not None:
        return bounds.low if bounds.low_open else bounds.low - step
    assert bounds.high is not None
    return bounds.high if bounds.high_open else bounds.high + step


@pytest.mark.parametrize("key", sorted(RANGES))
def test_out_of_range_values_name_the_key_value_and_range(key: str) -> None:
    default = RunConfig().to_mapping()[key]
    bounds = RANGES[key]
    bad = type(default)(_outside(bounds, isinstance(default, int)))
    with pytest.raises(InvalidSettings) as info:
        RunConfig.from_mapping({key: bad})
    problem = info.value.problems[0]
    assert (problem.key, problem.value) == (key, bad)
    assert str(info.value) == f"{key} {bounds.rule(isinstance(default, int))}, got {bad!r}"
    with pytest.raises(InvalidSettings, match=key):
        RunConfig.from_mapping({key: float("nan") if isinstance(default, float) else "x"})


def test_range_messages_read_as_documented() -> None:
    with pytest.raises(InvalidSettings) as info:
        RunConfig.from_mapping({"num-clients": 0, "alpha": -1, "fraction-train": 0})
    assert str(info.value) == (
        "num-clients must be at least 1, got 0; alpha must be >= 0 (0 = IID), got -1.0; "
        "fraction-train must be in (0, 1], got 0.0"
    )  # every bad value at once, in field order
    sourced = info.value.with_sources({"num-clients": "--clients 0", "alpha": "--alpha -1"})
    assert str(sourced) == (
        "--clients 0: num-clients must be at least 1; --alpha -1: alpha must be >= 0 (0 = IID); "
        "fraction-train must be in (0, 1], got 0.0"
    )
    assert isinstance(sourced, ConfigError)
    assert str(pickle.loads(pickle.dumps(sourced))) == str(sourced)  # crosses Ray intact


def test_edges_of_the_ranges_are_accepted() -> None:
    cfg = RunConfig.from_mapping(
        {"alpha": 0, "fraction-train": 1, "teacher-mix": 0, "seed": 0, "kd-weight": 1}
    )
    assert (cfg.alpha, cfg.fraction_train, cfg.seed) == (0.0, 1.0, 0)


def test_text_values_from_set_are_parsed_to_the_field_type() -> None:
    cfg = RunConfig.from_mapping(
        {"num-rounds": "3", "alpha": "0.1", "dataset": "ms", "seed": " 7 ", "codec": "fp16"}
    )
    assert (cfg.num_rounds, cfg.alpha, cfg.dataset, cfg.seed) == (3, 0.1, "ms", 7)


@pytest.mark.parametrize("text", ["3", "x:0.1", "0:0.1", "3:1.5", "3:-0.1", "3:1"])
def test_archive_gap_must_be_classes_and_kept_share(text: str) -> None:
    with pytest.raises(ConfigError, match="archive-gap must be N:KEEP"):
        RunConfig.from_mapping({"archive-gap": text})


def test_archive_gap_reaches_the_split() -> None:
    spec = RunConfig.from_mapping({"archive-gap": "3:0.05"}).split_spec()
    assert (spec.gap_classes, spec.gap_keep) == (3, 0.05)
    assert RunConfig().split_spec().gap_classes == 0


def test_statistics_are_refused_with_differential_privacy() -> None:
    with pytest.raises(ConfigError, match="privatises soft predictions, not class statistics"):
        RunConfig.from_mapping({"client-statistics": 1, "dp-noise": 0.5})
    assert RunConfig.from_mapping({"client-statistics": 1}).client_statistics == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SeaLake", "must be SOURCE:TARGET"),
        ("SeaLake:Ocean", "'Ocean', neither a class index below 10"),
        ("3:3", "onto itself"),
        ("12:1", "'12', neither"),
    ],
)
def test_attack_flip_names_two_classes_of_the_dataset(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"attack-flip .*{message}"):
        RunConfig.from_mapping({"attack": "label-flip", "attack-flip": text})


def test_attack_flip_takes_names_or_indices() -> None:
    from common.config_rules import parse_class_pair

    assert RunConfig().attack_flip == ""  # each attacker picks its own pair
    names = ("AnnualCrop", "Forest", "SeaLake")
    assert parse_class_pair("SeaLake:0", names) == (2, 0)
    assert parse_class_pair(" Forest : SeaLake ", names) == (1, 2)
    assert parse_class_pair("", names) is None
    assert RunConfig.from_mapping({"attack-flip": "Residential:SeaLake"}).attack_flip
