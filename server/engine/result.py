"""An audit's partial results and the one way they merge. An audit in process, a shard of images on a
server, a job array's part and one image on a Ray actor all end as an `AuditResult`: statistics as counts
and sums, per-image records, skips, frames. `Merge` joins any number of them into the result one audit
of every image gives: each part is taken once by its keys (its units and skips: a Ray task retried after
losing an actor may return an image again), its statistics merged exactly, records and skips put in the
audit's listing order. Plain data: the client's fan-out merges with this module and loads no engine."""
from __future__ import annotations

from dataclasses import dataclass, field

from .metrics import ProtocolStats
from .protocols import REGISTRY

SCHEMA = "shiftaudit.report/v2"  # v2: tallies with image-clustered sums; the report's (`report.Report`)


class MergeError(ValueError):
    """Parts that do not belong to one audit."""


@dataclass(frozen=True)
class Target:
    """With a target half-width: whether every protocol's interval got that narrow, after how many images
    (audited in content-hash order), of how many listed (None: not known); with --choose-pairs, the pairs
    per image each part chose and why (`precision.Choice`, one per part: a shard chooses on its own)."""

    halfwidth: float
    reached: bool
    images: int
    images_listed: int | None = None
    choices: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"halfwidth": self.halfwidth, "reached": self.reached, "images": self.images,
                "images_listed": self.images_listed, **({"choices": self.choices} if self.choices else {})}

    @classmethod
    def from_json(cls, data: dict) -> Target:
        return cls(data["halfwidth"], data["reached"], data["images"], data["images_listed"], data.get("choices", []))

    def merge(self, other: Target) -> Target:
        """Shards each audited their own images to the target: reached where every shard reached it."""
        listed = self.images_listed + other.images_listed if self.images_listed and other.images_listed else None
        return Target(self.halfwidth, self.reached and other.reached, self.images + other.images, listed,
                      self.choices + other.choices)


@dataclass
class AuditResult:
    """Mergeable outcome of an audit (or of one part of it)."""

    stats: dict[str, ProtocolStats] = field(default_factory=dict)
    images: list[dict] = field(default_factory=list)  # a record per image, its units scored
    image_stats: list[dict[str, ProtocolStats]] = field(default_factory=list)  # per image, when asked (`Audit`)
    skipped: list[dict] = field(default_factory=list)
    frames: int = 0
    output_kind: str | None = None
    classes: int | None = None  # the model's outputs per frame, as the first batch showed them
    seconds: float = 0.0
    target: Target | None = None
    left: list[str] | None = None  # interrupted: the images not audited (None: the audit ran to its end)

    @classmethod
    def empty(cls, protocols: tuple[str, ...], kinds: dict[str, str] | None = None) -> AuditResult:
        """No statistics yet for ``protocols``, of their ``kinds`` (default: the registry's; a stored report
        says its own, so one of a newer version with a protocol this one lacks still merges)."""
        kinds = kinds or {p: REGISTRY[p].kind for p in protocols}
        return cls(stats={p: ProtocolStats(kinds[p]) for p in protocols})

    def per_image(self) -> list[AuditResult]:
        """This result as a part per image (its record and its own statistics) and one per skip; it must
        have kept `image_stats`."""
        seen = {"output_kind": self.output_kind, "classes": self.classes}
        return [AuditResult(stats=s, images=[r], frames=sum(len(u["placements"]) for u in r["units"]), **seen)
                for r, s in zip(self.images, self.image_stats)] + [AuditResult(skipped=[s]) for s in self.skipped]

    def to_json(self) -> dict:
        """A part as data (a Ray actor's row): its statistics, records, skips and what the engine said."""
        return {"stats": {p: s.to_json() for p, s in self.stats.items()}, "images": self.images,
                "skipped": self.skipped, "frames": self.frames, "output_kind": self.output_kind,
                "classes": self.classes}

    @classmethod
    def from_json(cls, data: dict) -> AuditResult:
        return cls(stats={p: ProtocolStats.from_json(s) for p, s in data["stats"].items()}, images=data["images"],
                   skipped=data["skipped"], frames=data["frames"], output_kind=data["output_kind"],
                   classes=data["classes"])

    def keys(self) -> set[tuple]:
        """What this part holds, each taken once by a merge: its units and its skips."""
        return {("unit", r["image"], u["protocol"], u["index"]) for r in self.images for u in r["units"]} | \
            {("skip", s["image"], s["protocol"]) for s in self.skipped}

    def merge(self, other: AuditResult) -> None:
        for name, s in other.stats.items():
            self.stats.setdefault(name, ProtocolStats(s.kind)).merge(s)
        self.images += other.images
        self.skipped += other.skipped
        self.frames += other.frames
        self.output_kind = self.output_kind or other.output_kind
        self.classes = self.classes or other.classes
        self.seconds = max(self.seconds, other.seconds)
        if other.target is not None:
            self.target = other.target if self.target is None else self.target.merge(other.target)


class Merge:
    """The merge of an audit's parts: the fan-out's shards, a job array's parts, Ray's images."""

    def __init__(self, protocols: tuple[str, ...], kinds: dict[str, str] | None = None) -> None:
        self.protocols = protocols
        self.result = AuditResult.empty(protocols, kinds)
        self.taken: set[tuple] = set()
        self.dropped = 0  # parts taken already (a retried task's)

    def take(self, part: AuditResult) -> None:
        keys = part.keys()
        if keys and keys <= self.taken:
            self.dropped += 1
            return
        if keys & self.taken:  # a part's units come together: never some twice and some once
            raise RuntimeError(f"{sorted(keys & self.taken)[0][1]}: some of its units came twice and some once")
        self.taken |= keys
        self.result.merge(part)

    def finish(self, order: dict[str, int]) -> AuditResult:
        """The merged result, records and skips in the audit's listing order (``order``: image name ->
        place)."""
        put_in_order(self.result, order, self.protocols)
        return self.result


def put_in_order(result: AuditResult, order: dict[str, int], protocols: tuple[str, ...]) -> None:
    """``result``'s records and skips in the audit's order (``order``: image name -> place; a skip of an
    image before its protocols' in the audit's protocol order): how a merge or a resumed audit lists them."""
    last = len(order)
    result.images.sort(key=lambda r: order.get(r["image"], last))
    result.skipped.sort(key=lambda s: (order.get(s["image"], last), -1 if s["protocol"] is None
                                       else protocols.index(s["protocol"])))
