"""The ``bench robust`` section of ``docs/benchmarks.md``, from ``robust.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulations.bench.docs_format import figure, pct


def robust_section(r: dict[str, Any], out: Path, img: Path, docs_dir: Path) -> list[str]:
    rule = r["attacked_robust"]["rule"]
    gap = f" --ground-gap {r['ground_gap']}" if r.get("ground_gap") else ""
    lines = [
        "## Byzantine clients (`skydistill bench robust`)",
        "",
        "```",
        f"skydistill bench robust --clients {r['clients']} --attackers {r['attackers']} "
        f"--rounds {r['rounds']} --alpha {r['alpha']:g}{gap} --rule {rule}",
        "```",
        "",
        f"{r['attackers']} of {r['clients']} clients lie (clients/attacks.py"
        + (
            f"; class statistics, each attacker claiming {r.get('attack_scale', 1):g} times "
            "its tiles"
            if r.get("client_statistics")
            else "; soft predictions"
        )
        + f"). Global-student test accuracy in %, clean run {pct(r['clean']['final_accuracy'])}, "
        f"no-client control {pct(r['control']['final_accuracy'])} "
        "(docs/robustness.md explains the attacks and the rules):",
        "",
    ]
    attacks: dict[str, dict[str, float]] = r.get("attacks") or {}
    if attacks:
        rules = r.get("rules") or list(next(iter(attacks.values())))
        lines += [
            "| attack | " + " | ".join(rules) + " | best robust vs clean (points) |",
            "|---|" + "---:|" * (len(rules) + 1),
        ]
        for attack, accs in attacks.items():
            best = (r.get("best_robust_loss_points") or {}).get(attack)
            lines.append(
                f"| {attack} | "
                + " | ".join(pct(accs[rule]) if rule in accs else "-" for rule in rules)
                + f" | {'-' if best is None else f'{-best:+.1f}'} |"
            )
    missing = r.get("missing") or []
    if missing:
        lines += [
            "",
            f"Not run yet ({len(missing)} federations; `-` above): {', '.join(missing)}. "
            "The same command runs them and keeps what is measured on this kind of machine.",
        ]
    where = r.get("machine")
    if where:
        lines += [
            "",
            f"Measured on {where['cpu']}, training in {where['precision']} (torch "
            f"{where['torch']}).",
        ]
    lines += [
        "",
        f"Under {r['attack']} the plain mean loses {r['mean_loss_points']:.1f} points to the "
        f"clean run and {rule} {r['robust_loss_points']:.1f}.",
    ]
    sleeper = r.get("sleeper")
    if sleeper:
        within = sleeper.get("caught_within_rounds")
        lines += [
            "",
            f"Sleepers turn in round {sleeper['switch_round']}: {sleeper['sleepers_acted']} "
            f"lied before the end, {sleeper['sleepers_caught']} of them fell under trust "
            f"{sleeper['threshold']:g}"
            + (f", each within {within} round(s) of its first lie." if within is not None else "."),
        ]
    return [*lines, *figure(out / "robust.png", img, docs_dir, "robust"), ""]
