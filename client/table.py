"""The readable table printed at the end of a run."""
from __future__ import annotations


def _metric(m: dict) -> str:
    if m["value"] is None:
        return "-"
    lo, hi = m["ci95"]
    return f"{m['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def format_table(report: dict, verdicts: dict[str, list[str]] | None = None) -> str:
    rows = [("protocol", "pairs", "P(top-1 change) [95% CI]", "MAC [95% CI]", "gate")]
    for name, p in report["protocols"].items():
        gate = "" if verdicts is None else ("FAIL: " + "; ".join(verdicts[name]) if verdicts[name] else "pass")
        rows.append((name, str(p["pairs"]), _metric(p["p_top1_change"]), _metric(p["mac"]), gate))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    for name, p in report["protocols"].items():
        for s in p.get("by_size", []) if name == "size-sweep" else []:
            lines.append(f"  size-sweep S={s['size']:<4} pairs {s['pairs']:<5} "
                         f"P(top-1 change) {_metric(s['p_top1_change'])}")
    m = report["model"]
    fps = report["frames"] / report["seconds"] if report["seconds"] else 0.0
    d = report["device"]
    lines.append(f"{len(report['images'])} images, {report['frames']} frames in {report['seconds']:.1f} s "
                 f"({fps:.1f} frames/s); rendered on {d['render']}, inferred on {d['inference']}; "
                 f"output read as {m['output_kind']}")
    if report["skipped"]:
        lines.append(f"skipped {len(report['skipped'])}: " + "; ".join(s["reason"] for s in report["skipped"][:5])
                     + (" ..." if len(report["skipped"]) > 5 else ""))
    return "\n".join(lines)
