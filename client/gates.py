"""CI gates: a limit on a protocol's sensitivity, or on its increase over a baseline. The gates are one
option group (`Gates`); each asks for one `Check` per protocol, carrying the estimate with its 95 %
interval. What a check's outcome is (pass, fail, inconclusive) is decided in `summary.py`, once for every
view."""
from __future__ import annotations

from dataclasses import dataclass

from shiftaudit.server.engine.errors import OptionError, named
from shiftaudit.server.engine.options import named_options, option

GATED = {"p_top1_change": "max_p_top1_change", "mac": "max_mac"}
INCREASES = {"p_top1_change_increase": "max_increase_p_top1_change", "mac_increase": "max_increase_mac"}
NAMES = {"p_top1_change": "P(top-1 change)", "mac": "MAC", "p_top1_change_increase": "increase of P(top-1 change)",
         "mac_increase": "increase of MAC"}
GROUP = "output and gates"
ON = ("interval", "value", "upper")
INCONCLUSIVE = ("exit", "pass", "fail")


@dataclass(frozen=True)
class Check:
    """One limit on one protocol's estimate: ``on`` the 95 % interval (three outcomes; ``upper``: two, an
    interval that straddles the limit failing) or the point ``value`` (two)."""

    protocol: str
    metric: str  # a key of GATED or INCREASES
    limit: float
    on: str  # interval | value | upper
    estimate: dict  # {"value": ..., "ci95": [lo, hi]}; value None: nothing was measured
    nothing_seen: bool = False  # no change (or no discordant pair): the interval rests on the image count alone

    @property
    def title(self) -> str:
        gated = {"interval": " 95% interval", "upper": " upper 95%", "value": ""}[self.on]
        return f"{self.protocol}: {NAMES[self.metric]}{gated} <= {self.limit:g}"


@named_options
@dataclass(frozen=True)
class Gates:
    """The limits a run is gated on: a protocol's sensitivity, and its increase over a baseline
    (non-inferiority). A gate on the interval passes when all of it lies at or below the limit, fails when
    all of it lies above (measurably worse), and is inconclusive when it straddles the limit (too few
    images to tell)."""

    max_p_top1_change: float | None = option(None, "gate: P(top-1 change) at most this", parse=float, group=GROUP,
                                             default_text="no gate")
    max_mac: float | None = option(None, "gate: MAC at most this", parse=float, group=GROUP, default_text="no gate")
    gate_on: str = option("interval", "what a gate judges: the 95% interval (pass, fail or inconclusive), its upper "
                          "end only (an interval straddling the limit fails), or the point estimate", choices=ON,
                          group=GROUP)
    max_increase_p_top1_change: float | None = option(
        None, "gate against the baseline: the paired increase of P(top-1 change) at most D (its 95% interval, as "
        "--gate-on says)", parse=float, metavar="D", group=GROUP, default_text="no gate")
    max_increase_mac: float | None = option(None, "the same for MAC", parse=float, metavar="D", group=GROUP,
                                            default_text="no gate")
    inconclusive: str = option("exit", "what an inconclusive gate makes of the run: its own exit status (4), or a "
                               "pass or a fail for pipelines that must be binary", choices=INCONCLUSIVE, group=GROUP)
    judge_anyway: bool = option(False, "gate a model whose outputs do not depend on the image as if they did (the "
                                "audit says so, and its gates fail unless this is given)", group=GROUP)

    def __post_init__(self) -> None:
        if self.gate_on not in ON:
            raise OptionError(f"{named('gate_on')} must be one of {', '.join(ON)}, not {self.gate_on!r}")
        if self.inconclusive not in INCONCLUSIVE:
            raise OptionError(f"{named('inconclusive')} must be one of {', '.join(INCONCLUSIVE)}, not "
                              f"{self.inconclusive!r}")

    def checks(self, report: dict) -> list[Check] | None:
        """Every sensitivity gate asked for on every protocol of ``report``; None when none was asked for."""
        limits = {metric: getattr(self, name) for metric, name in GATED.items()}
        if all(v is None for v in limits.values()):
            return None
        return [Check(protocol, metric, limit, self.gate_on, summary[metric],
                      metric == "p_top1_change" and summary[metric]["value"] == 0)
                for protocol, summary in report["protocols"].items()
                for metric, limit in limits.items() if limit is not None]

    def increase_checks(self, comparison: dict) -> list[Check]:
        """Non-inferiority gates: the candidate (B) may not be measurably more sensitive than the baseline (A)
        by more than the limit."""
        return [Check(protocol, metric, limit, self.gate_on, summary[metric],
                      metric == "p_top1_change_increase" and not summary["flips"]["a_only"] + summary["flips"]["b_only"])
                for protocol, summary in comparison["protocols"].items()
                for metric, name in INCREASES.items() if (limit := getattr(self, name)) is not None]
