"""CI gates: fail the run when a protocol is more sensitive than allowed."""
from __future__ import annotations

GATED = {"p_top1_change": "max_p_top1_change", "mac": "max_mac"}


def evaluate(report: dict, limits: dict[str, float | None], on: str = "value") -> dict[str, list[str]]:
    """Per protocol, the failed gates as readable reasons (empty list: passed). ``on='upper'`` gates the
    upper end of the 95 % interval, so a small sample cannot pass by luck."""
    verdicts: dict[str, list[str]] = {}
    for name, proto in report["protocols"].items():
        reasons = []
        for metric, option in GATED.items():
            limit = limits.get(option)
            if limit is None:
                continue
            m = proto[metric]
            if m["value"] is None:  # nothing measured cannot pass a gate
                reasons.append(f"{metric}: no pairs measured")
                continue
            x = m["ci95"][1] if on == "upper" else m["value"]
            if x > limit:
                reasons.append(f"{metric}{' upper 95%' if on == 'upper' else ''} {x:.4f} > {limit:g}")
        verdicts[name] = reasons
    return verdicts
