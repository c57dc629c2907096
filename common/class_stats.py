"""Class statistics in a shared feature space: what a small shard teaches, in kilobytes.

Every node holds the same frozen *feature backbone* (the pre-installed tiny student without its
head). A client passes its private tiles through it (under the eight flips and rotations of an
overhead tile) and sends, per class, the count and the sum of the 64 features, plus the sum of
their outer products. Pooled over the clients and the ground archive these are sufficient
statistics for a linear discriminant (shared covariance, one mean per class): a classifier
that knows every class that anyone in the federation has labelled, built without a pixel or a
gradient leaving a node (FedProto-style prototypes, with the scatter that makes them a
classifier). See docs/distillation.md for what it adds to the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from common.errors import CodecError

STATISTICS_BACKBONE = "tiny"  # the pre-installed student whose features every node shares
VIEWS = tuple((k, flip) for k in range(4) for flip in (False, True))  # the dihedral group D4


def features(backbone: nn.Module, x: torch.Tensor, *, views: bool = True) -> np.ndarray:
    """Penultimate features of ``x`` through a student's ``features`` stages and global average
    pooling: (views, N, D) float64, eight dihedral views with ``views`` else one."""
    model = backbone
    model.eval()
    out = []
    with torch.inference_mode():
        for k, flip in VIEWS if views else VIEWS[:1]:
            rows = []
            for i in range(0, len(x), 512):
                b = x[i : i + 512]
                if k:
                    b = torch.rot90(b, k, dims=(2, 3))
                if flip:
                    b = torch.flip(b, dims=(3,))
                z = model.features(b.contiguous(memory_format=torch.channels_last))  # type: ignore[operator]
                rows.append(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1))
            out.append(torch.cat(rows) if rows else torch.zeros(0, _width(model)))
    return torch.stack(out).double().numpy()


def _width(model: nn.Module) -> int:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError("the feature backbone must be a student with a linear head")
    return int(head.in_features)


@dataclass(frozen=True)
class GroundFeatures:
    """One backbone's features of the ground's tiles, computed once per run: the archive's
    under every view (views, N, D) with its labels (N,), and the reference tiles' (N_ref, D)."""

    archive: np.ndarray
    labels: np.ndarray
    reference: np.ndarray

    @classmethod
    def of(
        cls,
        backbone: nn.Module,
        archive_x: torch.Tensor,
        archive_y: torch.Tensor,
        reference: torch.Tensor,
    ) -> GroundFeatures:
        return cls(
            features(backbone, archive_x),
            archive_y.numpy(),
            features(backbone, reference, views=False)[0],
        )


@dataclass(frozen=True)
class ClassStats:
    """Per-class counts (C,), feature sums (C, D) and the summed outer product (D, D)."""

    counts: np.ndarray
    sums: np.ndarray
    scatter: np.ndarray

    @classmethod
    def empty(cls, num_classes: int, dim: int) -> ClassStats:
        return cls(np.zeros(num_classes), np.zeros((num_classes, dim)), np.zeros((dim, dim)))

    @classmethod
    def of(cls, feats: np.ndarray, labels: np.ndarray, num_classes: int) -> ClassStats:
        """Statistics of (views, N, D) or (N, D) features with N labels."""
        z = np.asarray(feats, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        if z.ndim == 3:
            y = np.tile(y, z.shape[0])
            z = z.reshape(-1, z.shape[-1])
        if len(y) != len(z):
            raise ValueError(f"{len(z)} feature rows for {len(y)} labels")
        counts = np.bincount(y, minlength=num_classes).astype(np.float64)
        sums = np.zeros((num_classes, z.shape[1]))
        np.add.at(sums, y, z)
        return cls(counts, sums, z.T @ z)

    @property
    def num_classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def dim(self) -> int:
        return int(self.sums.shape[1])

    def __add__(self, other: ClassStats) -> ClassStats:
        return ClassStats(
            self.counts + other.counts, self.sums + other.sums, self.scatter + other.scatter
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The wire form (float32; the scatter's upper triangle only)."""
        iu = np.triu_indices(self.dim)
        return {
            "counts": self.counts.astype(np.float32),
            "sums": self.sums.astype(np.float32),
            "scatter": self.scatter[iu].astype(np.float32),
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], num_classes: int, dim: int, max_count: float = 1e7
    ) -> ClassStats:
        """Decode and check a reply's statistics; :class:`CodecError` says what is wrong."""
        expected = {"counts", "sums", "scatter"}
        if set(arrays) != expected:
            raise CodecError(f"class statistics hold {sorted(arrays)}, expected {sorted(expected)}")
        shapes = {
            "counts": (num_classes,),
            "sums": (num_classes, dim),
            "scatter": (dim * (dim + 1) // 2,),
        }
        for name, shape in shapes.items():
            a = arrays[name]
            if a.shape != shape:
                raise CodecError(f"class statistics {name} have shape {a.shape}, expected {shape}")
            if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
                raise CodecError(f"class statistics {name} must be finite floats")
        counts = arrays["counts"].astype(np.float64)
        if (counts < 0).any() or counts.sum() > max_count:
            raise CodecError(f"class counts must be non-negative and at most {max_count:g}")
        iu = np.triu_indices(dim)
        scatter = np.zeros((dim, dim))
        scatter[iu] = arrays["scatter"]
        scatter = scatter + np.triu(scatter, 1).T
        if counts.sum() > 0 and np.trace(scatter) < 0:
            raise CodecError("class statistics scatter has a negative trace")
        return cls(counts, arrays["sums"].astype(np.float64), scatter)


def linear_discriminant(
    stats: ClassStats, shrinkage: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weight (C, D), bias (C,), known (C,) bool) of the shared-covariance discriminant.

    Classes nobody holds get a bias of -1e4 (never predicted); the covariance is shrunk towards
    its mean variance (``shrinkage``) so that a few hundred tiles give a stable inverse."""
    n = stats.counts
    known = n > 0
    if known.sum() < 1:
        raise ValueError("no class statistics to build a discriminant from")
    mu = np.where(known[:, None], stats.sums / np.maximum(n, 1)[:, None], 0.0)
    within = stats.scatter - (mu.T * n) @ mu
    cov = within / max(float(n.sum()) - int(known.sum()), 1.0)
    d = cov.shape[0]
    cov = (1 - shrinkage) * cov + shrinkage * (np.trace(cov) / d) * np.eye(d)
    weight = np.linalg.solve(cov, mu.T).T
    bias = -0.5 * (weight * mu).sum(axis=1)
    bias[~known] = -1e4
    return weight, bias, known
