from __future__ import annotations

import tomllib

import pytest

from common.config import RunConfig
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
        ({"num-rounds": "many"}, "num-rounds='many' must be of type int"),
        ({"num-rounds": 2.5}, "num-rounds=2.5 must be of type int"),
        ({"num-clients": "2.5"}, "must be of type int"),
        ({"num-rounds": 0}, "num-rounds"),
        ({"teacher-mix": 1.5}, "teacher-mix"),
        ({"codec": "bf16"}, "unknown codec"),
        ({"dataset": "sar"}, "dataset must be one of"),
        ({"roles": "satellite,balloon"}, "unknown role 'balloon'"),
        ({"reference-fraction": 0.6, "test-fraction": 0.6}, "fractions"),
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
