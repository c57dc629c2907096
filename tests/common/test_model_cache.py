"""The cache of ground models: weights keyed by their recipe, scores keyed by the test set."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from common.class_stats import features
from common.config import RunConfig
from common.federation import Federation, load_federation
from common.model_cache import cache_path, cached_predictions, eval_set_key, load_or_train
from common.models import build_model
from common.training import TrainSettings, accuracy, fit, predict_proba
from tests.data.eurosat.make import make


@pytest.fixture(scope="module")
def external_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another labelled folder (other tiles, another seed) to pass as ``test-dir``."""
    return make(tmp_path_factory.mktemp("external"), per_class=4, seed=3) / "eurosat-rgb"


def _feds(fixture_data: Path, external_dir: Path) -> tuple[Federation, Federation]:
    cfg = RunConfig(data_dir=str(fixture_data), num_clients=3, batch_size=8)
    return load_federation(cfg), load_federation(replace(cfg, test_dir=str(external_dir)))


def test_the_stored_score_is_keyed_by_the_test_set(
    fixture_data: Path, external_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="common.model_cache")
    internal, external = _feds(fixture_data, external_dir)
    assert eval_set_key(internal) != eval_set_key(external)
    assert eval_set_key(internal) == eval_set_key(_feds(fixture_data, external_dir)[0])
    calls = {"train": 0, "evaluate": 0}
    recipe = {"arch": "tiny", "test": "score keyed by the test set"}

    def train(model: nn.Module) -> None:
        calls["train"] += 1
        archive = internal.split(internal.partition.archive)
        fit(model, TrainSettings(epochs=2, batch_size=8, seed=1), archive.x, archive.y)

    def run(fed: Federation) -> tuple[nn.Module, float]:
        def evaluate(m: nn.Module) -> float:
            calls["evaluate"] += 1
            test = fed.test_split()
            return accuracy(m, test.x, test.y)

        model = build_model("tiny", fed.spec.num_bands, fed.num_classes, seed=1)
        return load_or_train("unit-tiny", model, fed, recipe, train, evaluate, what="a test")

    model, score = run(internal)
    assert calls == {"train": 1, "evaluate": 1}
    assert "unit-tiny: not in the cache yet, training a test" in caplog.text
    test = internal.test_split()
    assert score == accuracy(model, test.x, test.y)

    caplog.clear()
    assert run(internal)[1] == score and calls == {"train": 1, "evaluate": 1}
    assert "unit-tiny: found in the cache" in caplog.text

    # A warm cache and another test set: the same weights, scored on that test set.
    model, external_score = run(external)
    assert calls == {"train": 1, "evaluate": 2}
    ext = external.test_split()
    assert len(ext) == 40 and external_score == accuracy(model, ext.x, ext.y)
    assert run(internal)[1] == score and run(external)[1] == external_score
    assert calls == {"train": 1, "evaluate": 2}

    # A score file of the old layout ({"score": ...}, for an unknown test set) is not trusted.
    score_file = cache_path("unit-tiny", internal, recipe).with_suffix(".json")
    score_file.write_text(json.dumps({"score": 0.0123}))
    assert run(internal)[1] == score and calls == {"train": 1, "evaluate": 3}
    assert set(json.loads(score_file.read_text())["scores"]) == {eval_set_key(internal)}


def test_predictions_are_cached_by_the_weights_and_the_inputs(
    fixture_data: Path, external_dir: Path
) -> None:
    fed, _ = _feds(fixture_data, external_dir)
    recipe = {"arch": "tiny", "test": "predictions keyed by weights and inputs"}
    model = build_model("tiny", fed.spec.num_bands, fed.num_classes, seed=1)
    inputs = fed.reference_images(np.arange(len(fed.partition.reference)))
    calls: list[int] = []

    def predict() -> np.ndarray:
        calls.append(1)
        return predict_proba(model, inputs)

    # no cached weights: nothing to key the predictions by, so they are computed every time
    first = cached_predictions("unit-probs", fed, recipe, inputs, predict)
    cached_predictions("unit-probs", fed, recipe, inputs, predict)
    assert len(calls) == 2
    path = cache_path("unit-probs", fed, recipe)
    torch.save(model.state_dict(), path)
    again = cached_predictions("unit-probs", fed, recipe, inputs, predict)
    assert len(calls) == 3
    assert np.array_equal(cached_predictions("unit-probs", fed, recipe, inputs, predict), again)
    assert len(calls) == 3 and np.array_equal(again, first)
    # other inputs, or other weights under the same recipe, are other entries
    cached_predictions("unit-probs", fed, recipe, inputs[:2], lambda: predict()[:2])
    assert len(calls) == 4
    other = build_model("tiny", fed.spec.num_bands, fed.num_classes, seed=2)
    torch.save(other.state_dict(), path)
    fresh = cached_predictions(
        "unit-probs", fed, recipe, inputs, lambda: predict_proba(other, inputs)
    )
    assert not np.array_equal(fresh, first)
    # a truncated entry is computed again, not trusted
    for entry in path.parent.glob(f"{path.stem}-predictions-*.npy"):
        entry.write_bytes(b"\x93NUMPY")
    assert np.array_equal(
        cached_predictions("unit-probs", fed, recipe, inputs, lambda: predict_proba(other, inputs)),
        fresh,
    )


def test_two_kinds_of_output_of_one_model_on_the_same_inputs_are_two_entries(
    fixture_data: Path,
) -> None:
    """``kind`` keys what is computed: a backbone's features of the tiles are never taken for
    its predictions on them (or the other way round), and each is reused as its own."""
    fed = load_federation(RunConfig(data_dir=str(fixture_data), num_clients=2))
    model = build_model("tiny", fed.spec.num_bands, fed.num_classes, seed=3)
    recipe = {"unit": "kinds"}
    torch.save(model.state_dict(), cache_path("unit-kinds", fed, recipe))
    inputs = fed.split(fed.partition.archive[:6]).x
    probs = cached_predictions(
        "unit-kinds", fed, recipe, inputs, lambda: predict_proba(model, inputs)
    )
    feats = cached_predictions(
        "unit-kinds", fed, recipe, inputs,
        lambda: features(model, inputs, views=False)[0], kind="features",
    )  # fmt: skip
    assert probs.shape == (6, fed.num_classes) and feats.shape[0] == 6
    assert feats.shape != probs.shape
    for kind, expected in (("predictions", probs), ("features", feats)):
        again = cached_predictions(
            "unit-kinds", fed, recipe, inputs,
            lambda: pytest.fail("computed again"), kind=kind,
        )  # fmt: skip
        assert np.array_equal(again, expected)
