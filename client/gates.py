"""CI gates: fail the run when a protocol is more sensitive than allowed. One `Check` per protocol and
gate, so the table, the Markdown summary and the JUnit file say the same thing."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

GATED = {"p_top1_change": "max_p_top1_change", "mac": "max_mac"}
INCREASES = {"p_top1_change_increase": "max_increase_p_top1_change", "mac_increase": "max_increase_mac"}
NAMES = {"p_top1_change": "P(top-1 change)", "mac": "MAC", "p_top1_change_increase": "increase of P(top-1 change)",
         "mac_increase": "increase of MAC"}


@dataclass(frozen=True)
class Check:
    protocol: str
    metric: str  # a key of GATED
    limit: float
    on: str  # value | upper: the estimate, or the upper end of its 95 % interval
    observed: float | None  # None: nothing was measured, which cannot pass a gate

    @property
    def failed(self) -> bool:
        return self.observed is None or self.observed > self.limit

    @property
    def title(self) -> str:
        return f"{self.protocol}: {NAMES[self.metric]}{' upper 95%' if self.on == 'upper' else ''} <= {self.limit:g}"

    @property
    def reason(self) -> str:
        if self.observed is None:
            return f"{self.metric}: no pairs measured"
        return f"{self.metric}{' upper 95%' if self.on == 'upper' else ''} {self.observed:.4f} " \
               f"{'>' if self.failed else '<='} {self.limit:g}"


def add_gate_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--max-p-top1-change", type=float, help="gate: fail (exit 1) above this P(top-1 change)")
    group.add_argument("--max-mac", type=float, help="gate: fail (exit 1) above this MAC")
    group.add_argument("--gate-on", choices=("value", "upper"), default="value",
                       help="gate the estimate or the upper end of its 95%% interval")


def checks(report: dict, args: argparse.Namespace) -> list[Check] | None:
    """Every gate the flags ask for on every protocol of ``report``; None when no gate was asked for.
    ``--gate-on upper`` gates the upper end of the 95 % interval, so a small sample cannot pass by luck."""
    limits = {metric: getattr(args, option) for metric, option in GATED.items()}
    if all(v is None for v in limits.values()):
        return None
    out = []
    for name, proto in report["protocols"].items():
        for metric, limit in limits.items():
            if limit is not None:
                m = proto[metric]
                observed = None if m["value"] is None else (m["ci95"][1] if args.gate_on == "upper" else m["value"])
                out.append(Check(name, metric, limit, args.gate_on, observed))
    return out


def verdicts(report: dict, found: list[Check] | None) -> dict[str, list[str]] | None:
    """Per protocol, the failed gates' reasons (empty: passed); None when no gate was asked for."""
    if found is None:
        return None
    return {name: [c.reason for c in found if c.protocol == name and c.failed] for name in report["protocols"]}


def add_increase_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--max-increase-p-top1-change", type=float, metavar="D", help="gate against the baseline: "
                       "fail (exit 1) when the upper end of the paired increase's 95%% interval exceeds D")
    group.add_argument("--max-increase-mac", type=float, metavar="D", help="the same for MAC")


def increase_checks(comparison: dict, args: argparse.Namespace) -> list[Check]:
    """Non-inferiority gates: the candidate (B) may not be measurably more sensitive than the baseline
    (A): the upper end of the paired difference's 95 % interval must stay at or below D."""
    out = []
    for name, proto in comparison["protocols"].items():
        for metric, option in INCREASES.items():
            limit = getattr(args, option, None)
            if limit is not None:
                m = proto[metric]
                out.append(Check(name, metric, limit, "upper", None if m["value"] is None else m["ci95"][1]))
    return out
