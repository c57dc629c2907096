"""What bench robust reads from a run's per-round trust (report.json ``rounds[].trust``,
server/trust.py): who ended flagged, and how fast the history rule caught the sleepers.

A simulated client's trust key is its name, ``<role>-<partition id>``; the attackers are the
``attackers`` lowest partition ids (clients/attacks.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.config import RunConfig
from server.history import REPORT_FILE


def partition_of(key: str) -> int | None:
    """The partition id in a simulated client's name (``drone-17`` -> 17), else None."""
    tail = key.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def is_attacker_key(key: str, attackers: int) -> bool:
    pid = partition_of(key)
    return pid is not None and pid < attackers


def trust_outcome(report: dict[str, Any], attackers: int) -> dict[str, Any]:
    """After the last round: how many attackers and honest clients are flagged, of how many
    known, and the lowest honest trust."""
    trust = report["rounds"][-1].get("trust") or {} if report["rounds"] else {}
    flagged = trust.get("flagged", [])
    bad = [k for k in flagged if is_attacker_key(k, attackers)]
    return {
        "known": trust.get("clients", 0),
        "flagged_attackers": len(bad),
        "flagged_honest": len(flagged) - len(bad),
        "min": trust.get("min"),
        "median": trust.get("median"),
    }


def sleeper_detection(run_dir: Path, attackers: int, cfg: RunConfig) -> dict[str, Any]:
    """For the sleeper run under ``history``: each sleeper's round of its first reply after
    turning (``acted``: it lied from then on), the first round its trust was under the
    threshold (``flagged``), their difference, and the trust of every sleeper per round."""
    report = json.loads((run_dir / REPORT_FILE).read_text())
    switch = cfg.attack_after + 1
    acted: dict[str, int] = {}
    flagged: dict[str, int] = {}
    trust: dict[str, dict[int, float]] = {}
    for record in report["rounds"]:
        r, t = record["round"], record.get("trust") or {}
        for key, value in (t.get("scored") or {}).items():
            if not is_attacker_key(key, attackers):
                continue
            trust.setdefault(key, {})[r] = value
            if r >= switch:
                acted.setdefault(key, r)
        for key in t.get("flagged", []):
            if key in acted and key not in flagged:
                flagged[key] = r
    delays = {k: flagged[k] - acted[k] if k in flagged else None for k in acted}
    caught = [d for d in delays.values() if d is not None]
    return {
        "switch_round": switch,
        "threshold": cfg.trust_threshold,
        "acted": acted,
        "flagged": flagged,
        "delay_rounds": delays,
        "sleepers_acted": len(acted),
        "sleepers_caught": len(caught),
        "caught_within_rounds": max(caught) if caught and len(caught) == len(acted) else None,
        "caught_in_3_rounds_from_switch": sum(1 for k, r in flagged.items() if r <= switch + 2),
        "acted_in_3_rounds_from_switch": sum(1 for r in acted.values() if r <= switch + 2),
        "trust": {k: dict(sorted(v.items())) for k, v in sorted(trust.items())},
    }
