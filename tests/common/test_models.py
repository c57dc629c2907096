"""The model zoo: seeded initial weights do not depend on the process's random state."""

from __future__ import annotations

import pytest
import torch

from common.errors import ConfigError
from common.models import build_model


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("arch", ["tiny", "teacher"])
def test_a_seed_fixes_the_initial_weights(arch: str) -> None:
    first = _weights(build_model(arch, 3, 10, seed=7))
    torch.rand(1000)  # someone else drew from the global random state
    second = _weights(build_model(arch, 3, 10, seed=7))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)
    other = _weights(build_model(arch, 3, 10, seed=8))
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))
    # The global random state is left as it was: seeding a model does not reseed the caller.
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_model(arch, 3, 10, seed=7)
    torch.testing.assert_close(torch.rand(3), expected)


def test_an_unknown_model_names_the_zoo() -> None:
    with pytest.raises(ConfigError, match="tiny"):
        build_model("huge", 3, 10)
