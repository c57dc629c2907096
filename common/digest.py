"""Content digests of tensors and of nested values that hold them: what identifies an input
when a computation's result is reused (the distil cache, the ground's head fits, the bench's
scoring of equal models)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def tensor_digest(*tensors: torch.Tensor | np.ndarray) -> str:
    """SHA-256 of the shapes, dtypes and bytes of ``tensors``."""
    digest = hashlib.sha256()
    for t in tensors:
        array = t.detach().contiguous().numpy() if isinstance(t, torch.Tensor) else t
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape} {array.dtype};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def value_digest(*values: object) -> str:
    """SHA-256 of ``values``: nested mappings (by sorted key), lists and tuples, tensors and
    arrays (by :func:`tensor_digest`), anything else by its ``repr``."""
    digest = hashlib.sha256()
    for value in values:
        _update_with(digest, value)
    return digest.hexdigest()


def _update_with(digest: Any, value: object) -> None:
    if isinstance(value, torch.Tensor | np.ndarray):
        digest.update(tensor_digest(value).encode())
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(f"<{key}>".encode())
            _update_with(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(b"[")
        for item in value:
            _update_with(digest, item)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode())
