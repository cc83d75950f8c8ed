"""What a run's gates conclude, decided here and nowhere else: each check's outcome (pass, fail, or
inconclusive when its interval straddles the limit, with how many images would decide), the run's verdict
and its exit status, and whether the model can be judged at all (outputs that do not depend on the image
pass no gate unless the user says so)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from shiftaudit.server.engine.intervals import TAIL

from .gates import Check, Gates


@dataclass(frozen=True)
class Outcome:
    """A gate's (or a run's) outcome, and how each view shows it."""

    name: str  # pass | fail | inconclusive: also the page's style class
    word: str  # as the table writes it
    mark: str  # as Markdown writes it
    exit: int  # the run's exit status when this is its worst outcome

    @property
    def failed(self) -> bool:
        return self.exit == FAILED_EXIT


FAILED_EXIT = 1
PASS = Outcome("pass", "pass", "✅", 0)
FAIL = Outcome("fail", "FAIL", "❌", FAILED_EXIT)
INCONCLUSIVE = Outcome("inconclusive", "INCONCLUSIVE", "⚠️", 4)
WORST_FIRST = (FAIL, INCONCLUSIVE, PASS)


@dataclass(frozen=True)
class Judged:
    """A check, its outcome and why, in words a person acts on."""

    check: Check
    outcome: Outcome
    reason: str


def images_to_decide(estimate: dict, limit: float, images: int, nothing_seen: bool = False) -> int | None:
    """The images an interval that straddles ``limit`` needs to lie on one side of it, if the rate observed
    held (its half-width shrinks as one over the square root of the images); None when the estimate is at
    the limit (no number of images decides). With ``nothing_seen`` (no change: each image one trial) the
    interval is Clopper and Pearson's for none of k, whose end falls to the limit at k = ln 0.025 / ln(1 -
    limit) exactly."""
    value, (lo, hi) = estimate["value"], estimate["ci95"]
    gap, half = (limit - value, hi - value) if value < limit else (value - limit, value - lo)
    if gap <= 0 or images < 1:
        return None
    if nothing_seen and 0 < limit < 1:
        return max(images + 1, math.ceil(math.log(TAIL) / math.log(1 - limit)))
    return max(images + 1, math.ceil(images * (half / gap) ** 2))


def judge(check: Check, gates: Gates, images: int, cannot_judge: str | None) -> Judged:
    """``check``'s outcome; ``images``: how many the estimate comes from; ``cannot_judge``: why the model
    cannot be judged, if so (then it fails, unless ``gates.judge_anyway``)."""
    m, limit, what = check.estimate, check.limit, check.metric
    if cannot_judge and not gates.judge_anyway:
        return Judged(check, FAIL, f"{what}: the model cannot be judged as configured (the warning says why)")
    if m["value"] is None:
        return Judged(check, FAIL, f"{what}: no pairs measured")
    if check.on == "value":
        passed = m["value"] <= limit
        return Judged(check, PASS if passed else FAIL, f"{what} {m['value']:.4f} {'<=' if passed else '>'} {limit:g}")
    lo, hi = m["ci95"]
    if hi <= limit:
        return Judged(check, PASS, f"{what} upper 95% {hi:.4f} <= {limit:g}")
    if lo > limit:
        return Judged(check, FAIL, f"{what} lower 95% {lo:.4f} > {limit:g}: measurably above")
    if check.on == "upper":  # two outcomes: what is not shown below the limit fails
        return Judged(check, FAIL, f"{what} upper 95% {hi:.4f} > {limit:g}")
    needed = images_to_decide(m, limit, images, check.nothing_seen)
    reason = (f"{what} 95% [{lo:.4f}, {hi:.4f}] straddles {limit:g}: too few images to tell"
              + (f" (about {needed} would decide at the rate observed)" if needed else " (the estimate is at the limit)"))
    mapped = {"pass": PASS, "fail": FAIL}.get(gates.inconclusive, INCONCLUSIVE)
    return Judged(check, mapped, reason + ("" if mapped is INCONCLUSIVE else f"; counted as {mapped.name}"))


@dataclass(frozen=True)
class Gate:
    """The gates of one protocol: their worst outcome, and the reasons of those that did not pass."""

    outcome: Outcome
    reasons: tuple[str, ...]

    @property
    def detail(self) -> str:
        """What a view beside the outcome's mark or style shows: the reasons, or the outcome."""
        return "; ".join(self.reasons) or self.outcome.word

    @property
    def text(self) -> str:
        return f"{self.outcome.word}: {self.detail}" if self.reasons else self.outcome.word


def worst(outcomes: list[Outcome]) -> Outcome:
    return next((o for o in WORST_FIRST if o in outcomes), PASS)


def gate(judged: list[Judged]) -> Gate:
    return Gate(worst([j.outcome for j in judged]), tuple(j.reason for j in judged if j.outcome is not PASS))


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    text: str  # "2 of 8 gates failed", "3 of 8 gates inconclusive: ...", "all 8 gates passed"


def verdict(judged: list[Judged] | None) -> Verdict | None:
    """The run's verdict; None when no gate was asked for."""
    if not judged:
        return None
    counts = {o: sum(j.outcome is o for j in judged) for o in WORST_FIRST}
    n = len(judged)
    if counts[FAIL]:
        more = f", {counts[INCONCLUSIVE]} inconclusive" if counts[INCONCLUSIVE] else ""
        return Verdict(FAIL, f"{counts[FAIL]} of {n} gates failed{more}")
    if counts[INCONCLUSIVE]:
        return Verdict(INCONCLUSIVE, f"{counts[INCONCLUSIVE]} of {n} gates inconclusive: too few images to tell")
    return Verdict(PASS, f"all {n} gates passed")
