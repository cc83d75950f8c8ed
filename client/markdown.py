"""The report as Markdown, for a CI step summary or a pull-request comment: the verdict first, the
protocols' table, sensitivity by embedded size, then what was audited and how to run it again."""
from __future__ import annotations

from .flags import command_line
from .gates import Check
from .table import plural, target_line


def _metric(m: dict) -> str:
    if m["value"] is None:
        return "–"
    lo, hi = m["ci95"]
    return f"{m['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render(report: dict, found: list[Check] | None) -> str:
    m, pre = report["model"], report["model"]["preprocessing"]
    failed = [c for c in found or [] if c.failed]
    verdict = ("" if found is None else
               f" — **{len(failed)} of {len(found)} gates failed**" if failed else f" — all {len(found)} gates passed")
    lines = [f"## shiftaudit: `{m['path']}`{verdict}", ""]
    gated = found is not None
    lines += [_row(["protocol", "pairs", "P(top-1 change) [95% CI]", "MAC [95% CI]"] + (["gate"] if gated else [])),
              _row(["---", "---:", "---:", "---:"] + (["---"] if gated else []))]
    for name, p in report["protocols"].items():
        gate = [c for c in found or [] if c.protocol == name]
        cell = ["❌ " + "; ".join(c.reason for c in gate if c.failed) if any(c.failed for c in gate) else "✅ pass"]
        lines.append(_row([f"`{name}`", str(p["pairs"]), _metric(p["p_top1_change"]), _metric(p["mac"])]
                          + (cell if gated else [])))
    by_size = report["protocols"].get("size-sweep", {}).get("by_size", [])
    if by_size:
        lines += ["", "<details><summary>size-sweep: sensitivity by embedded size</summary>", "",
                  _row(["size S", "pairs", "P(top-1 change) [95% CI]", "MAC [95% CI]"]),
                  _row(["---:", "---:", "---:", "---:"])]
        lines += [_row([str(s["size"]), str(s["pairs"]), _metric(s["p_top1_change"]), _metric(s["mac"])])
                  for s in by_size]
        lines += ["", "</details>"]
    accuracy = next((p["accuracy"] for p in report["protocols"].values() if "accuracy" in p), None)
    lines += [""]
    if accuracy:
        lines.append(f"Accuracy of the first frames (labelled images): {_metric(accuracy['first_frame'])}")
    size = f"{m['input']['width'] or '?'}×{m['input']['height'] or '?'}"
    lines.append(f"{plural(len(report['images']), 'image')}, {plural(report['frames'], 'frame')} in "
                 f"{report['seconds']:.1f} s. Model sha256 `{m['sha256'][:16]}…`, input {size} "
                 f"{m['input']['layout']} {m['input']['dtype']}, {m['runner']}; rendered on {report['device']['render']}, "
                 f"inferred on {report['device']['inference']}; shiftaudit {report['tool']['version']}.")
    if (target := target_line(report)) is not None:
        lines.append(target[0].upper() + target[1:] + ".")
    origins = pre.get("origins", {})
    defaults = [k for k, o in origins.items() if o == "default"]
    lines.append(f"Preprocessing: mean {pre['mean']}, std {pre['std']} on 0–{pre['pixel_range']:g} "
                 f"{pre['channel_order']}, output {pre['output']}; from {pre['source']}"
                 + (f" and options ({', '.join(k for k, o in origins.items() if o == 'options')})"
                    if "options" in origins.values() else "") + ".")
    if defaults:
        lines.append(f"> **Warning**: {', '.join(defaults)} not given: defaults used (ImageNet's); if the model was "
                     "trained otherwise, these numbers are not its own.")
    if report["skipped"]:
        lines.append(f"Skipped: {len(report['skipped'])} (first: "
                     + "; ".join(s["reason"] for s in report["skipped"][:3]) + ").")
    lines += ["", "Run it again:", "", "```sh", command_line(report), "```", ""]
    return "\n".join(lines)
