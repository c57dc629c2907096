"""Byzantine clients for robustness experiments (simulation only, off by default).

With ``attackers > 0`` the clients with the lowest partition ids (that fraction of them)
replace their honest predictions before the reply is built:

* ``random``: rows drawn from a flat Dirichlet distribution;
* ``inverted``: each row's mass moved to the classes the honest student finds least likely;
* ``constant``: every row all on one class;
* ``mixed``: attackers cycle through the three.

The reply still passes validation: these are well-formed lies, which only robust
aggregation can catch.
"""

from __future__ import annotations

import numpy as np

ATTACKS = ("random", "inverted", "constant", "mixed")


def is_attacker(partition_id: int, num_clients: int, fraction: float) -> bool:
    return partition_id < round(fraction * num_clients)


def poison(probs: np.ndarray, kind: str, partition_id: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "mixed":
        kind = ATTACKS[partition_id % 3]
    n, c = probs.shape
    if kind == "random":
        out = rng.dirichlet(np.ones(c), size=n)
    elif kind == "inverted":
        out = 1.0 - probs
        out = out**4  # sharpen towards the least likely classes
        out = out / out.sum(axis=1, keepdims=True)
    elif kind == "constant":
        out = np.zeros((n, c))
        out[:, partition_id % c] = 1.0
    else:
        raise ValueError(f"unknown attack {kind!r}: choose one of {', '.join(ATTACKS)}")
    return np.asarray(out, dtype=np.float32)
