"""What a reference tile costs on the wire, as the contact plan sizes a round's payload."""

from __future__ import annotations

import pytest

from common.config import RunConfig
from server.fleet import bytes_per_tile


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, 2 * (10 + 4)),  # int8: one byte per class and a float32 scale, down and up
        ({"dataset": "ms"}, 2 * (10 + 4)),  # the same ten classes in 13 bands
        ({"codec": "fp16"}, 2 * 10 * 2),
        ({"codec": "fp32"}, 2 * 10 * 4),
        ({"codec": "topk", "topk": 3}, 2 * 3 * (2 + 1)),  # float16 values, uint8 classes
        ({"codec": "topk", "topk": 5}, 2 * 5 * (2 + 1)),
    ],
)
def test_bytes_per_tile_follow_the_codec_and_the_classes(
    settings: dict[str, object], expected: int
) -> None:
    assert bytes_per_tile(RunConfig(**settings)) == expected  # type: ignore[arg-type]
