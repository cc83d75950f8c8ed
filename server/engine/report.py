"""The versioned JSON report (``shiftaudit.report/v2``) that the CLI writes and other tools read, as a typed
object: assembled in one place (`assemble`) from what made it and the audit's (merged) result, by every
path an audit takes — in process, on a server, a shard, a job array's parts (`merge_parts`), the fan-out
over servers (`merge_reports`), Ray — and never patched afterwards. Plain data: the fan-out merges reports
with this module and loads no engine."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from importlib.resources import files
from typing import Any

from .consistency import check_disjoint, check_part
from .files import listing_order
from .labels import merge_labels
from .metrics import ProtocolStats
from .result import SCHEMA, AuditResult, Merge, MergeError, Target

READABLE = ("shiftaudit.report/v1", SCHEMA)  # reports a view renders again; a merge takes v2 parts only


def json_schema(name: str = "report") -> dict:
    """The JSON Schema of the report (``report.schema.json``, shipped in the package; docs/report.md), or
    of another document of ours (``compare``: docs/compare.md)."""
    return json.loads(files(__package__).joinpath(f"{name}.schema.json").read_text())


@dataclass(frozen=True)
class Made:
    """What made a report: the tool (versions), the model (what the runner and the preprocessing say of it:
    path, digest, input, ...), the options (the report's ``config``) and what rendered and inferred."""

    tool: dict
    model: dict
    config: dict
    device: dict


@dataclass(frozen=True)
class Report:
    """A report; `to_json` writes it in the schema's key order, the optional parts only when present."""

    tool: dict
    model: dict
    config: dict
    device: dict
    frames: int
    seconds: float
    protocols: dict  # per protocol, its summary: estimates with intervals, strata
    tallies: dict  # per protocol, its statistics as counts and sums: what a merge adds
    skipped: list[dict]
    images: list[dict]
    target: Target | None = None
    labels: dict | None = None  # how the labels met the images
    shard: dict | None = None  # one part of a job array: which shard of how many, of how many images
    shards: list[dict] | None = None  # merged from shards: where each ran
    ray: dict | None = None  # audited on a Ray cluster
    interrupted: dict | None = None  # stopped before its end: the images left out (`resume` continues it)
    audit: dict | None = None  # run on a server: its id there (and the server, as the client that got it named it)
    schema: str = SCHEMA

    def to_json(self) -> dict:
        out: dict[str, Any] = {"schema": self.schema}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "schema" and value is not None:
                out[f.name] = value.to_json() if isinstance(value, Target) else value
        return out

    @classmethod
    def from_json(cls, doc: dict) -> Report:
        """A stored report (its schema checked by the caller)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        if values.get("target") is not None:
            values["target"] = Target.from_json(values["target"])
        return cls(**values)

    @property
    def made(self) -> Made:
        return Made(self.tool, {k: v for k, v in self.model.items() if k != "output_kind"}, self.config, self.device)

    def result(self) -> AuditResult:
        """The audit's result, as a part that merges with others."""
        return AuditResult(stats={name: ProtocolStats.from_json(t) for name, t in self.tallies.items()},
                           images=list(self.images), skipped=list(self.skipped), frames=self.frames,
                           output_kind=self.model["output_kind"], classes=self.model.get("outputs"),
                           seconds=self.seconds, target=self.target,
                           left=self.interrupted["left"] if self.interrupted else None)


def assemble(made: Made, result: AuditResult, *, labels: dict | None = None, shard: dict | None = None,
             shards: list[dict] | None = None, ray: dict | None = None, audit: dict | None = None) -> Report:
    """The report of ``result``, made by ``made``: the one place a report is put together."""
    return Report(tool=made.tool, model={**made.model, "output_kind": result.output_kind}, config=made.config,
                  device=made.device, frames=result.frames, seconds=round(result.seconds, 3),
                  protocols={name: s.summary() for name, s in result.stats.items()},
                  tallies={name: s.to_json() for name, s in result.stats.items()}, skipped=result.skipped,
                  images=result.images, target=result.target, labels=labels, shard=shard, shards=shards, ray=ray,
                  interrupted=None if result.left is None else {"images_left": len(result.left), "left": result.left},
                  audit=audit)


def _made(parts: list[tuple[str, Report]]) -> Made:
    """What made the parts of one audit: the same schema, options and model, or MergeError; devices that
    differ are named in ``shards``."""
    name, first = parts[0]
    for where, report in parts:
        for key in ("schema", "config"):
            if getattr(report, key) != getattr(first, key):
                raise MergeError(f"{where}: its report's {key} differs from {name}'s")
        if report.model["sha256"] != first.model["sha256"]:
            raise MergeError(f"{where} audited a model with sha256 {report.model['sha256'][:12]}..., {name} one "
                             f"with {first.model['sha256'][:12]}...: not the same model")
    devices = [r.device for _, r in parts]
    device = devices[0] if all(d == devices[0] for d in devices) else {"render": "several (see shards)",
                                                                       "inference": "several (see shards)"}
    # the model as a part that ran it describes it (an empty shard's saw none of its outputs)
    model = next((r.made.model for _, r in parts if r.model.get("outputs") is not None), first.made.model)
    return Made(first.tool, model, first.config, device)


def merge_reports(parts: list[tuple[str, Report]], order: dict[str, int], seconds: float | None = None,
                  unknown: dict | None = None, failed_on: list[list[str]] | None = None) -> Report:
    """One report from the reports of an audit's image shards (``(where, report)`` each: the server or
    the file), as one audit of all the images would give it: the statistics merged from their tallies
    (exactly), records in the order of ``order`` (image name -> position). Where each shard ran is kept
    under ``shards`` (with the servers that failed it before, ``failed_on``). ``seconds``: the whole
    audit's (a fan-out's wall-clock time, a job array's parts' sum; default: the longest part's);
    ``unknown``: the labels' names that match no image at all."""
    for where, report in parts:
        if report.interrupted:
            raise MergeError(f"{where}: an interrupted audit ({report.interrupted['images_left']} images left): "
                             "resume it first (audit-client --resume)")
        check_part(where, report)
    check_disjoint(parts)
    first = parts[0][1]
    made = _made(parts)
    merge = Merge(tuple(first.config["protocols"]), {p: t["kind"] for p, t in first.tallies.items()})
    for _, report in parts:
        merge.take(report.result())
    result = merge.finish(order)
    if seconds is not None:
        result.seconds = seconds
    labels = None if first.labels is None else merge_labels(
        [r.labels for _, r in parts], order, unknown if unknown is not None else first.labels["unknown_names"])
    shards = [{"server": where, "images": len(r.images), "frames": r.frames, "seconds": r.seconds, "device": r.device,
               **({"failed_on": failed} if failed else {})}
              for (where, r), failed in zip(parts, failed_on or [[]] * len(parts))]
    return assemble(made, result, labels=labels, shards=shards)


def merge_parts(parts: list[tuple[str, Report]]) -> Report:
    """One report from a job array's parts (``audit-client --shard I/N`` each; ``(file, report)``), as
    one audit of every image gives it. Refused: a part that is not one, parts of different splits or
    listings, a shard given twice or missing (a merge of some shards is not the audit), and, by
    `merge_reports`, different options or models."""
    for name, report in parts:
        if report.shard is None:
            raise MergeError(f"{name}: not a part of a sharded audit (audit-client --shard I/N writes one)")
    first_name, first = parts[0]
    count, listed = first.shard["count"], first.shard["images_listed"]
    seen: dict[int, str] = {}
    for name, report in parts:
        shard = report.shard
        if (shard["count"], shard["images_listed"]) != (count, listed):
            raise MergeError(f"{name} is shard {shard['index']} of {shard['count']} of {shard['images_listed']} images, "
                             f"{first_name} one of {count} of {listed}: not parts of one audit")
        if shard["index"] in seen:
            raise MergeError(f"shard {shard['index']} of {count} is given twice ({seen[shard['index']]} and {name}): "
                             "its images would count twice")
        seen[shard["index"]] = name
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise MergeError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {count} missing: "
                         "the parts given are not the whole audit")
    names = [x["image"] for _, r in parts for x in (*r.images, *r.skipped)]
    # the parts ran whenever a scheduler ran them: what is known is the time they took together
    return merge_reports(parts, listing_order(list(dict.fromkeys(names))), sum(r.seconds for _, r in parts))


def cannot_judge(report: dict) -> str | None:
    """Why this model's outputs cannot be judged as configured, from the report's own records, or None:
    every frame of every image gives the same class with the same probability (the outputs do not depend
    on the image: most likely its preprocessing), or its first frames' top-1 probabilities are near
    uniform over its classes."""
    units = [u for record in report["images"] for u in record["units"]]
    if len(report["images"]) < 2 or not units:
        return None
    classes = {c for u in units for c in u["top1"]}
    probabilities = {p for u in units for p in u["p_top1"]}
    if len(classes) == 1 and max(probabilities) - min(probabilities) <= 1e-6:
        return (f"every frame of all {len(report['images'])} images gives class {classes.pop()} with probability "
                f"{min(probabilities):.6f}: its outputs do not depend on the image (check its preprocessing)")
    outputs = report["model"].get("outputs")
    firsts = sorted(u["p_top1"][0] for u in units)
    median = firsts[len(firsts) // 2]
    if outputs and outputs >= 10 and median < 1.5 / outputs:
        return (f"its top-1 probability is near uniform (median {median:.4f}, uniform over {outputs} classes "
                f"{1 / outputs:.4f}): it cannot tell the images apart (check its preprocessing)")
    return None


def headline(report: dict) -> dict:
    """What a list of audits shows of ``report``: its images (finished), those it left (interrupted), each
    protocol's P(top-1 change) and MAC with their intervals, and why its model cannot be judged (or None):
    enough for a client to apply its gates (ListAudits' ``summary_json``)."""
    return {"images": len(report["images"]),
            "images_left": report["interrupted"]["images_left"] if report.get("interrupted") else 0,
            "protocols": sensitivities(report), "cannot_judge": cannot_judge(report)}


def sensitivities(report: dict) -> dict:
    """Each protocol's P(top-1 change) and MAC, with their intervals."""
    return {name: {"p_top1_change": p["p_top1_change"], "mac": p["mac"]} for name, p in report["protocols"].items()}
