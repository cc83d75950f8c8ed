"""The versioned JSON report (``shiftaudit.report/v1``) that the CLI writes and other tools read: built
from an audit's result, or merged from the reports of an audit's shards. Plain data: the fan-out merges
reports with this module and loads no engine."""
from __future__ import annotations

import json
from importlib.resources import files
from typing import TYPE_CHECKING

from .files import listing_order
from .labels import merge_labels
from .metrics import ProtocolStats

if TYPE_CHECKING:  # merging reports (the client's fan-out) needs neither the audit nor an engine
    from .audit import AuditResult
    from .options import AuditOptions

SCHEMA = "shiftaudit.report/v1"


def json_schema(name: str = "report") -> dict:
    """The JSON Schema of the report (``report.schema.json``, shipped in the package; docs/report.md), or
    of another document of ours (``compare``: docs/compare.md)."""
    return json.loads(files(__package__).joinpath(f"{name}.schema.json").read_text())


def build_report(tool: dict, model: dict, options: AuditOptions, result: AuditResult, device: dict) -> dict:
    """``tool``: what made it (versions); ``model``: what the runner and preprocessing say about the model
    (path, digest, input, ...); ``device``: what rendered and what inferred."""
    return {
        "schema": SCHEMA,
        "tool": tool,
        "model": {**model, "output_kind": result.output_kind},
        "config": options.to_json(),
        "device": device,
        "frames": result.frames,
        "seconds": round(result.seconds, 3),
        "protocols": {name: stats.summary() for name, stats in result.stats.items()},
        "tallies": {name: stats.to_json() for name, stats in result.stats.items()},
        "skipped": result.skipped,
        "images": result.images,
        **({"target": result.target} if result.target is not None else {}),
    }


class MergeError(ValueError):
    """Shard reports that do not belong to one audit."""


def merge_reports(shards: list[tuple[str, dict]], order: dict[str, int], seconds: float) -> dict:
    """One report from the reports of an audit's image shards (``(server, report)`` each), as one
    audit of all the images would give it: the statistics merged from their tallies (exactly), records
    in the order of ``order`` (image name -> position). Where each shard ran is kept under ``shards``."""
    first = shards[0][1]
    for server, report in shards:
        for key in ("schema", "config"):
            if report[key] != first[key]:
                raise MergeError(f"{server}: its report's {key} differs from {shards[0][0]}'s")
        if report["model"]["sha256"] != first["model"]["sha256"]:
            raise MergeError(f"{server} audited a model with sha256 {report['model']['sha256'][:12]}..., "
                             f"{shards[0][0]} one with {first['model']['sha256'][:12]}...: not the same model")
    stats: dict[str, ProtocolStats] = {}
    for _, report in shards:
        for name, data in report["tallies"].items():
            part = ProtocolStats.from_json(data)
            stats.setdefault(name, ProtocolStats(part.kind)).merge(part)
    devices = [r["device"] for _, r in shards]
    last = len(order)
    targets = [r["target"] for _, r in shards if "target" in r]
    target = {} if not targets else {"target": {  # each shard audited its own images in content order to the target
        "halfwidth": targets[0]["halfwidth"], "reached": all(t["reached"] for t in targets),
        "images": sum(t["images"] for t in targets),
        "images_listed": sum(t["images_listed"] or 0 for t in targets) if all(t["images_listed"] for t in targets)
        else None}}
    return {
        **first,
        "model": {**first["model"],
                  "output_kind": next((r["model"]["output_kind"] for _, r in shards if r["model"]["output_kind"]),
                                      None)},
        "device": devices[0] if all(d == devices[0] for d in devices) else {"render": "several (see shards)",
                                                                          "inference": "several (see shards)"},
        "frames": sum(r["frames"] for _, r in shards),
        "seconds": round(seconds, 3),
        "protocols": {name: s.summary() for name, s in stats.items()},
        "tallies": {name: s.to_json() for name, s in stats.items()},
        "skipped": sorted((x for _, r in shards for x in r["skipped"]), key=lambda x: order.get(x["image"], last)),
        "images": sorted((x for _, r in shards for x in r["images"]), key=lambda x: order.get(x["image"], last)),
        **target,
        "shards": [{"server": server, "images": len(r["images"]), "frames": r["frames"], "seconds": r["seconds"],
                    "device": r["device"]} for server, r in shards],
    }


def merge_parts(parts: list[tuple[str, dict]]) -> dict:
    """One report from a job array's parts (``audit-client --shard I/N`` each; ``(file, report)``), as
    one audit of every image gives it. Refused: a part that is not one, parts of different splits or
    listings, a shard given twice or missing (a merge of some shards is not the audit), and, by
    `merge_reports`, different options or models."""
    for name, report in parts:
        if "shard" not in report:
            raise MergeError(f"{name}: not a part of a sharded audit (audit-client --shard I/N writes one)")
    first_name, first = parts[0]
    count, listed = first["shard"]["count"], first["shard"]["images_listed"]
    seen: dict[int, str] = {}
    for name, report in parts:
        shard = report["shard"]
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
    names = [x["image"] for _, r in parts for x in (*r["images"], *r["skipped"])]
    order = listing_order(list(dict.fromkeys(names)))
    merged = merge_reports(parts, order, max(r["seconds"] for _, r in parts))
    del merged["shard"]
    if "labels" in first:
        merged["labels"] = merge_labels([r["labels"] for _, r in parts], order, first["labels"]["unknown_names"])
    return merged
