"""Each run-config key is declared once, in ``RunConfig``, with its default and help text; the
choices of text keys are data in ``config_rules``; ``with_values`` is the one merge."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import pytest

from common.config import SETTINGS, RunConfig
from common.config_fields import setting, table
from common.config_rules import CHOICES, MAY_BE_EMPTY, RANGES, InvalidSettings
from common.errors import ConfigError


def test_every_field_is_a_setting_with_a_help_text() -> None:
    assert list(SETTINGS) == [f.name.replace("_", "-") for f in fields(RunConfig)]
    defaults = RunConfig()
    for key, s in SETTINGS.items():
        assert s.name == key.replace("-", "_")
        assert s.default == getattr(defaults, s.name) and type(s.default) is s.type, key
        assert len(s.help) > 10 and s.help == s.help.strip() and not s.help.endswith("."), key


def test_only_text_that_defaults_to_empty_says_what_empty_means() -> None:
    for key, s in SETTINGS.items():
        assert bool(s.empty) == (s.default == ""), key
        assert s.shown_default == (s.empty if s.default == "" else s.default)


def test_a_field_declared_without_setting_is_refused() -> None:
    @dataclass(frozen=True)
    class Declared:
        rounds: int = setting(3, "rounds")

    @dataclass(frozen=True)
    class Plain:
        rounds: int = field(default=3)

    assert table(Declared)["rounds"].help == "rounds"
    with pytest.raises(TypeError, match="rounds: declare a run-config field as setting"):
        table(Plain)


def test_choices_name_text_keys_whose_defaults_are_allowed() -> None:
    for key, allowed in CHOICES.items():
        s = SETTINGS[key]
        assert s.type is str and key not in RANGES, key
        assert s.default in allowed or (key in MAY_BE_EMPTY and s.default == ""), key
        with pytest.raises(ConfigError, match=f"{key} must be one of {', '.join(allowed)}"):
            RunConfig.from_mapping({key: "no-such-choice"})
    assert MAY_BE_EMPTY.issubset(CHOICES)


def test_every_bad_choice_is_reported_with_the_others_in_field_order() -> None:
    with pytest.raises(InvalidSettings) as info:
        RunConfig.from_mapping({"codec": "bf16", "dataset": "sar", "num-rounds": 0})
    assert [p.key for p in info.value.problems] == ["dataset", "codec", "num-rounds"]


def test_with_values_layers_settings_over_a_config() -> None:
    base = RunConfig(num_clients=7, alpha=0.1)
    cfg = base.with_values({"num-rounds": "3", "alpha": 0.3})
    assert (cfg.num_clients, cfg.num_rounds, cfg.alpha) == (7, 3, 0.3)
    assert (base.num_rounds, base.alpha) == (10, 0.1)  # frozen: a new config
    assert base.with_values({}) == base
    with pytest.raises(ConfigError, match="unknown run-config keys: num-rundes"):
        base.with_values({"num-rundes": 3})
    with pytest.raises(ConfigError, match="num-clients must be at least 1, got 0"):
        base.with_values({"num-clients": 0})
