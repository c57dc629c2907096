"""Byzantine clients for robustness experiments (simulation only, off by default).

With ``attackers > 0`` the clients with the lowest partition ids (that fraction of them) lie.
An attacker knows what an honest client knows: the targets it received, its own student's
predictions and its own labelled tiles; never the other clients' replies. What it sends:

* ``random``: rows drawn from a flat Dirichlet distribution;
* ``inverted``: each row's mass moved to the classes its own student finds least likely;
* ``constant``: every row all on one class;
* ``mixed``: attackers cycle through the three above;
* ``lma`` (least-likely-class attack, Roux, Zimmer and Pokutta, ICLR 2025): each row all on
  the class its estimate of the honest mean finds least likely; the estimate is the mean of
  the targets it received (the federation's last consensus) and its own prediction;
* ``cpa`` (class-prior attack, same paper): each row all on the class least similar to the
  estimate's top class, similarity being the classes' co-occurrence (cosine of the columns)
  in the attacker's own predictions and targets;
* ``label-flip``: the mass of one class moved to another (``attack-flip = "A:B"``, class names
  or indices; empty: the attacker's own most frequent class to the class least similar to it);
* ``sleeper``: honest for the first ``attack-after`` rounds, then ``lma``.

In statistics mode (``client-statistics = 1``) a client sends class statistics of its tiles,
not predictions, so the lie is in the labels the statistics are computed with
(:func:`poison_labels`): each tile takes the class the attack would put its row on, computed
from the client's own deployed student on its tiles (``label-flip``: tiles of A count as B).
``attack-scale`` > 1 inflates the evidence an attacker claims: its ``num-examples`` and class
counts, and, in statistics mode, every statistic (counts, sums, scatter), so that its lie
weighs as many tiles.

``attack-omniscient = 1`` (simulation): the attacker's estimate of the honest consensus is
replaced by the truth the simulation holds: the reference tiles' true labels (prediction
mode) and its tiles' true labels (statistics mode) stand for what the honest majority says;
and in statistics mode it aims ``lma``, ``cpa`` and ``sleeper`` at the classes the ground's
archive lacks (where the fusion listens to the clients, server/evidence.py).

Every lie passes validation: well-formed replies that only robust aggregation can catch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.config import RunConfig
from common.config_rules import parse_class_pair
from common.errors import ConfigError

ATTACKS = ("random", "inverted", "constant", "mixed", "lma", "cpa", "label-flip", "sleeper")
MIXED = ("random", "inverted", "constant")


def is_attacker(partition_id: int, num_clients: int, fraction: float) -> bool:
    return partition_id < round(fraction * num_clients)


@dataclass(frozen=True)
class Attack:
    """What an attacker does, decoded from the run config (clients/round.py builds it)."""

    kind: str
    after: int = 0  # sleeper: honest rounds before it turns
    scale: float = 1.0  # evidence it claims, as a multiple of its own
    flip: tuple[int, int] | None = None
    omniscient: bool = False
    aim: tuple[int, ...] = ()  # omniscient, statistics mode: the classes the archive lacks

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise ConfigError(f"unknown attack {self.kind!r}: choose one of {', '.join(ATTACKS)}")

    @classmethod
    def of(cls, cfg: RunConfig, classes: tuple[str, ...], aim: tuple[int, ...] = ()) -> Attack:
        """The run config's attack; ``aim`` only with ``attack-omniscient``."""
        return cls(
            kind=cfg.attack,
            after=cfg.attack_after,
            scale=cfg.attack_scale,
            flip=parse_class_pair(cfg.attack_flip, classes),
            omniscient=bool(cfg.attack_omniscient),
            aim=aim if cfg.attack_omniscient else (),
        )

    def playing(self, partition_id: int, server_round: int) -> str | None:
        """The attack this client plays in ``server_round`` (None: honest this round)."""
        if self.kind == "mixed":
            return MIXED[partition_id % len(MIXED)]
        if self.kind == "sleeper":
            return "lma" if server_round > self.after else None
        return self.kind


def _one_hot(classes: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((len(classes), c))
    out[np.arange(len(classes)), classes] = 1.0
    return out


def class_similarity(view: np.ndarray) -> np.ndarray:
    """(C, C) cosine between the class columns of ``view``: how often two classes share a
    row's mass; the diagonal is +inf (a class is never its own least similar)."""
    cols = np.asarray(view, dtype=np.float64)
    norms = np.linalg.norm(cols, axis=0)
    sim = (cols.T @ cols) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(sim, np.inf)
    return sim


def _least_similar_to(sim: np.ndarray, mass: np.ndarray, source: int) -> int:
    """The class least similar to ``source``; ties (never seen together) to the rarest."""
    return int(np.lexsort((mass, sim[source]))[0])


def least_similar(view: np.ndarray) -> np.ndarray:
    """Per row of ``view``: the class least similar to the row's top class."""
    sim, mass = class_similarity(view), np.asarray(view).sum(axis=0)
    table = np.array([_least_similar_to(sim, mass, t) for t in range(sim.shape[0])])
    out: np.ndarray = table[np.asarray(view).argmax(axis=1)]
    return out


def flip_pair(view: np.ndarray, flip: tuple[int, int] | None) -> tuple[int, int]:
    """The configured pair, or else the most frequent class of ``view`` onto the class least
    similar to it."""
    if flip is not None:
        return flip
    mass = np.asarray(view).sum(axis=0)
    source = int(mass.argmax())
    return source, _least_similar_to(class_similarity(view), mass, source)


def poison(
    probs: np.ndarray,
    kind: str,
    partition_id: int,
    rng: np.random.Generator,
    *,
    view: np.ndarray | None = None,
    flip: tuple[int, int] | None = None,
) -> np.ndarray:
    """The soft predictions attack ``kind`` sends instead of ``probs`` (its student's);
    ``view`` is its estimate of the honest consensus on the same tiles (default: ``probs``;
    clients/round.py passes the mean of the targets it received and ``probs``)."""
    if kind == "mixed":
        kind = MIXED[partition_id % len(MIXED)]
    n, c = probs.shape
    view = probs if view is None else np.asarray(view, dtype=np.float64)
    if kind == "random":
        out = rng.dirichlet(np.ones(c), size=n)
    elif kind == "inverted":
        out = (1.0 - probs) ** 4  # sharpen towards the least likely classes
        out = out / out.sum(axis=1, keepdims=True)
    elif kind == "constant":
        out = np.zeros((n, c))
        out[:, partition_id % c] = 1.0
    elif kind in ("lma", "sleeper"):
        out = _one_hot(np.asarray(view).argmin(axis=1), c)
    elif kind == "cpa":
        out = _one_hot(least_similar(view), c)
    elif kind == "label-flip":
        source, target = flip_pair(view, flip)
        out = np.array(probs, dtype=np.float64)
        out[:, target] += out[:, source]
        out[:, source] = 0.0
    else:
        raise ValueError(f"unknown attack {kind!r}: choose one of {', '.join(ATTACKS)}")
    return np.asarray(out, dtype=np.float32)


def poison_labels(
    labels: np.ndarray,
    probs: np.ndarray,
    kind: str,
    partition_id: int,
    rng: np.random.Generator,
    *,
    flip: tuple[int, int] | None = None,
    aim: tuple[int, ...] = (),
) -> np.ndarray:
    """Statistics mode: the labels attack ``kind`` computes its class statistics with, for
    tiles of true ``labels`` on which its own deployed student predicts ``probs``. Each tile
    takes the class the attack would put the tile's row on (``label-flip``: its tiles of the
    source class count as the target). ``aim``: ``lma``, ``cpa`` and ``sleeper`` choose
    among those classes only (omniscient)."""
    labels = np.asarray(labels, dtype=np.int64)
    c = probs.shape[1]
    if kind == "label-flip":
        source, target = flip_pair(_one_hot(labels, c), flip)
        return np.where(labels == source, target, labels)
    view = np.asarray(probs, dtype=np.float64)
    if aim and kind in ("lma", "sleeper", "cpa"):
        outside = np.ones(c, dtype=bool)
        outside[list(aim)] = False
        if kind == "cpa":  # the aimed class least like the tile's true class
            score = class_similarity(_one_hot(labels, c) + view)[labels]
        else:  # the aimed class its student finds least likely
            score = view.copy()
        score[:, outside] = np.inf
        return np.asarray(score.argmin(axis=1), dtype=np.int64)
    rows = poison(view, kind, partition_id, rng)
    return np.asarray(rows.argmax(axis=1), dtype=np.int64)
