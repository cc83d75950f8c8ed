"""The readable summary printed at the end of a run: a row per protocol, then the run, the
preprocessing in force and where it came from, accuracy when labels were given, and the skips counted
by reason."""
from __future__ import annotations

import io
from collections import Counter

from rich import box
from rich.console import Console
from rich.table import Column, Table


def _metric(m: dict) -> str:
    if m["value"] is None:
        return "-"
    lo, hi = m["ci95"]
    return f"{m['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _preprocessing(pre: dict) -> list[str]:
    """What the model was fed, and a warning when any of it is a guess (the defaults are ImageNet's)."""
    origins = pre.get("origins", {})
    given = "; ".join(f"{origin}: {', '.join(k for k, o in origins.items() if o == origin)}"
                      for origin in ("sidecar", "options") if origin in origins.values())
    line = (f"preprocessing: mean {pre['mean']} std {pre['std']} on 0-{pre['pixel_range']:g} "
            f"{pre['channel_order']}, output {pre['output']}" + (f" ({given})" if given else ""))
    defaults = [k for k, o in origins.items() if o == "default"]
    if not defaults:
        return [line]
    return [line, f"warning: {', '.join(defaults)} not given (neither sidecar nor flag): defaults used; if the "
                  "model was trained otherwise, the numbers above are not its own"]


def _labels(labels: dict) -> str:
    """How the labels met the images; what may be an oversight, with the first few names."""
    parts = [f"labels: {labels['labelled_images']} of "
             f"{labels['labelled_images'] + labels['unlabelled_images']['count']} images labelled"]
    for key, what in (("unknown_names", "names matching no image"), ("repeated_lines", "repeated lines"),
                      ("beyond_outputs", "labels beyond the model's outputs")):
        few = labels[key]
        if few["count"]:
            parts.append(f"{what}: {few['count']} ({', '.join(few['first'])}"
                         + (", ..." if few["count"] > len(few["first"]) else "") + ")")
    return "; ".join(parts)


def target_line(report: dict) -> str | None:
    """With --target-halfwidth: whether the intervals got that narrow, and after how many images."""
    t = report.get("target")
    if t is None:
        return None
    of = f" of {t['images_listed']}" if t["images_listed"] else ""
    if t["reached"]:
        return (f"target +-{t['halfwidth']:g}: reached after {plural(t['images'], 'image')}{of} (in content-hash "
                "order); the rest were not audited")
    widths = {name: max(m["value"] - m["ci95"][0], m["ci95"][1] - m["value"]) for name, p in report["protocols"].items()
              if (m := p["p_top1_change"])["value"] is not None}
    worst = max(widths, key=widths.get) if widths else None
    return (f"target +-{t['halfwidth']:g} NOT reached: the images ran out after {plural(t['images'], 'image')}"
            + (f"; {worst} is still +-{widths[worst]:.3f}: audit more images" if worst else ""))


def _skipped(skipped: list[dict]) -> str:
    reasons = Counter("unusable" if s["protocol"] is None else f"too small for {s['protocol']}" for s in skipped)
    first = "; ".join(s["reason"] for s in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
    return f"skipped {', '.join(f'{n} {why}' for why, n in reasons.items())}: {first}"


def _render(table: Table) -> list[str]:
    console = Console(file=io.StringIO(), width=1000, color_system=None, highlight=False)
    console.print(table)
    return [line.rstrip() for line in console.file.getvalue().splitlines() if line.strip()]


def format_table(report: dict, verdicts: dict[str, list[str]] | None = None) -> str:
    numbers = [Column(h, justify="right") for h in ("pairs", "P(top-1 change) [95% CI]", "MAC [95% CI]")]
    table = Table("protocol", *numbers, *(["gate"] if verdicts is not None else []), box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for name, p in report["protocols"].items():
        gate = [] if verdicts is None else ["FAIL: " + "; ".join(verdicts[name]) if verdicts[name] else "pass"]
        table.add_row(name, str(p["pairs"]), _metric(p["p_top1_change"]), _metric(p["mac"]), *gate)
    lines = _render(table)
    by_size = report["protocols"].get("size-sweep", {}).get("by_size", [])
    if by_size:  # the paper's Fig. 6 as numbers: sensitivity against the embedded size
        sizes = Table(*(Column(h, justify="right") for h in ("size-sweep S", "pairs", "P(top-1 change) [95% CI]",
                                                            "MAC [95% CI]")), box=box.SIMPLE_HEAD, pad_edge=False)
        for s in by_size:
            sizes.add_row(str(s["size"]), str(s["pairs"]), _metric(s["p_top1_change"]), _metric(s["mac"]))
        lines += _render(sizes)
    accuracy = next((p["accuracy"] for p in report["protocols"].values() if "accuracy" in p), None)
    if accuracy:
        lines.append(f"accuracy (first frames, labelled images) {_metric(accuracy['first_frame'])}")
    m = report["model"]
    fps = report["frames"] / report["seconds"] if report["seconds"] else 0.0
    d = report["device"]
    lines.append(f"{plural(len(report['images']), 'image')}, {plural(report['frames'], 'frame')} in "
                 f"{report['seconds']:.1f} s ({fps:.1f} frames/s); rendered on {d['render']}, inferred on "
                 f"{d['inference']}; output read as {m['output_kind']}")
    if (target := target_line(report)) is not None:
        lines.append(target)
    lines += _preprocessing(m["preprocessing"])
    if "labels" in report:
        lines.append(_labels(report["labels"]))
    if "ray" in report:
        r = report["ray"]
        lines.append(f"on Ray ({r['address']}): {plural(r['workers'], 'worker')}; {r['images_audited']} images audited, "
                     f"{r['images_skipped']} skipped" + (f", {r['duplicates_dropped']} returned again by retried tasks "
                                                         "and taken once" if r["duplicates_dropped"] else ""))
    if report["skipped"]:
        lines.append(_skipped(report["skipped"]))
    return "\n".join(lines)
