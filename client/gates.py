"""CI gates: fail the run when a protocol is more sensitive than allowed, or measurably more sensitive
than a baseline. The gates are one option group (`Gates`); each asks for one `Check` per protocol, so the
table, the Markdown summary, the page and the JUnit file say the same thing."""
from __future__ import annotations

from dataclasses import dataclass

from shiftaudit.server.engine.errors import OptionError
from shiftaudit.server.engine.options import named_options, option

GATED = {"p_top1_change": "max_p_top1_change", "mac": "max_mac"}
INCREASES = {"p_top1_change_increase": "max_increase_p_top1_change", "mac_increase": "max_increase_mac"}
NAMES = {"p_top1_change": "P(top-1 change)", "mac": "MAC", "p_top1_change_increase": "increase of P(top-1 change)",
         "mac_increase": "increase of MAC"}
GROUP = "output and gates"
ON = ("value", "upper")


@dataclass(frozen=True)
class Check:
    protocol: str
    metric: str  # a key of GATED or INCREASES
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


@named_options
@dataclass(frozen=True)
class Gates:
    """The limits a run is gated on: a protocol's sensitivity (its estimate, or with ``gate_on="upper"`` the
    upper end of its 95 % interval, so that a small sample cannot pass by luck), and its increase over a
    baseline (non-inferiority: the upper end of the paired increase's interval)."""

    max_p_top1_change: float | None = option(None, "gate: fail (exit 1) above this P(top-1 change)", parse=float,
                                             group=GROUP, default_text="no gate")
    max_mac: float | None = option(None, "gate: fail (exit 1) above this MAC", parse=float, group=GROUP,
                                   default_text="no gate")
    gate_on: str = option("value", "gate the estimate or the upper end of its 95% interval", choices=ON, group=GROUP)
    max_increase_p_top1_change: float | None = option(
        None, "gate against the baseline: fail (exit 1) when the upper end of the paired increase's 95% interval "
        "exceeds D", parse=float, metavar="D", group=GROUP, default_text="no gate")
    max_increase_mac: float | None = option(None, "the same for MAC", parse=float, metavar="D", group=GROUP,
                                            default_text="no gate")

    def __post_init__(self) -> None:
        if self.gate_on not in ON:
            raise OptionError(f"gate_on must be value or upper, not {self.gate_on!r}", "gate_on")

    def checks(self, report: dict) -> list[Check] | None:
        """Every sensitivity gate asked for on every protocol of ``report``; None when none was asked for."""
        limits = {metric: getattr(self, name) for metric, name in GATED.items()}
        if all(v is None for v in limits.values()):
            return None
        out = []
        for protocol, summary in report["protocols"].items():
            for metric, limit in limits.items():
                if limit is not None:
                    m = summary[metric]
                    observed = None if m["value"] is None else (m["ci95"][1] if self.gate_on == "upper" else m["value"])
                    out.append(Check(protocol, metric, limit, self.gate_on, observed))
        return out

    def increase_checks(self, comparison: dict) -> list[Check]:
        """Non-inferiority gates: the candidate (B) may not be measurably more sensitive than the baseline
        (A): the upper end of the paired difference's 95 % interval must stay at or below the limit."""
        out = []
        for protocol, summary in comparison["protocols"].items():
            for metric, name in INCREASES.items():
                limit = getattr(self, name)
                if limit is not None:
                    m = summary[metric]
                    out.append(Check(protocol, metric, limit, "upper", None if m["value"] is None else m["ci95"][1]))
        return out
