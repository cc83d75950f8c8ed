"""What a report says, computed once: the verdict of its gates, a row per protocol, sensitivity by
embedded size, the run, the notes and the warnings. The table, the Markdown summary, the page and the JUnit
file only render a `Summary` (a comparison of two engines: a `ComparisonSummary`), so what a gate's
outcome is, how an estimate is written and what is warned about is decided here and nowhere else."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from shiftaudit.server.engine.precision import PILOT_IMAGES, halfwidth
from shiftaudit.server.engine.report import cannot_judge

from .gates import Check, Gates
from .rerun import command_line
from .verdict import Gate, Judged, Verdict, gate, judge, verdict


def estimate(m: dict, signed: bool = False) -> str:
    """An estimate with its 95 % interval, ``0.125 [0.043, 0.310]``; a dash when nothing was measured."""
    if m["value"] is None:
        return "–"
    f = "+.3f" if signed else ".3f"
    return f"{m['value']:{f}} [{m['ci95'][0]:{f}}, {m['ci95'][1]:{f}}]"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class Row:
    """A protocol's line: its pairs, P(top-1 change) and MAC with their intervals, and its gates."""

    protocol: str
    pairs: int
    p_top1_change: dict
    mac: dict
    gate: Gate | None  # None: no gate was asked for

    @property
    def cells(self) -> list[str]:
        return [self.protocol, str(self.pairs), estimate(self.p_top1_change), estimate(self.mac)]


HEAD = ["protocol", "pairs", "P(top-1 change) [95% CI]", "MAC [95% CI]"]
SIZE_HEAD = ["size S", "pairs", "P(top-1 change) [95% CI]", "MAC [95% CI]"]


@dataclass(frozen=True)
class Summary:
    """Everything the views say about a report, in the words they say it."""

    model: str  # the model's file name
    seconds: float  # the run's
    judged: list[Judged] | None  # each gate's outcome; None: no gate was asked for
    verdict: Verdict | None
    rows: list[Row]
    by_size: dict[str, list[list[str]]]  # per protocol stratified by size (size-sweep): a row per size (`SIZE_HEAD`)
    accuracy: str | None  # of the first frames, when labels were given
    run: str  # images, frames, time and devices
    target: str | None  # with a target half-width: reached or not
    preprocessing: str  # what the model was fed, and where each value came from
    warnings: list[str]
    labels: str | None
    ray: str | None
    skipped: str | None
    audited: list[tuple[str, str]]  # what was audited, with what: (what, plain text)
    properties: list[tuple[str, str]]  # the same for machines: (key, value as text or JSON)
    command: str  # the audit-client command that audits again with these options

    @property
    def gated(self) -> bool:
        return self.judged is not None

    @property
    def checks(self) -> list[Check]:
        return [j.check for j in self.judged or []]

    @property
    def notes(self) -> list[str]:
        """The lines after the tables, in order."""
        return [line for line in (self.accuracy, self.run, self.target, self.preprocessing, self.labels, self.ray,
                                  self.skipped) if line]


def summarise(report: dict, checks: list[Check] | None, gates: Gates = Gates()) -> Summary:
    """What ``report`` says, with the outcomes of its ``checks`` (judged as ``gates`` say)."""
    accuracy = next((p["accuracy"] for p in report["protocols"].values() if "accuracy" in p), None)
    unjudgeable = cannot_judge(report)
    judged = None if checks is None else [judge(c, gates, len(report["images"]), unjudgeable) for c in checks]
    return Summary(
        model=report["model"]["path"], seconds=report["seconds"], judged=judged, verdict=verdict(judged),
        rows=[Row(name, p["pairs"], p["p_top1_change"], p["mac"],
                  None if judged is None else gate([j for j in judged if j.check.protocol == name]))
              for name, p in report["protocols"].items()],
        by_size={name: [[str(s["size"]), str(s["pairs"]), estimate(s["p_top1_change"]), estimate(s["mac"])]
                        for s in p["by_size"]] for name, p in report["protocols"].items() if "by_size" in p},
        accuracy=f"accuracy of the first frames (labelled images): {estimate(accuracy['first_frame'])}"
        if accuracy else None,
        run=_run(report), target=target_line(report), preprocessing=_preprocessing(report["model"]["preprocessing"]),
        warnings=interrupted(report) + ([f"cannot judge this model as configured: {unjudgeable}"] if unjudgeable else [])
        + guessed(report["model"]["preprocessing"]),
        labels=_labels(report["labels"]) if "labels" in report else None,
        ray=_ray(report["ray"]) if "ray" in report else None,
        skipped=_skipped(report["skipped"]) if report["skipped"] else None, audited=audited(report),
        properties=_properties(report), command=command_line(report))


def interrupted(report: dict) -> list[str]:
    """An interrupted audit's partial report says so first: its numbers are of the images finished."""
    if not report.get("interrupted"):
        return []
    done, left = len(report["images"]), report["interrupted"]["images_left"]
    return [f"interrupted: a partial report of the {plural(done, 'image')} finished, {left} left (audit-client "
            "--resume continues it)"]


def _run(report: dict) -> str:
    m, d = report["model"], report["device"]
    return (f"{plural(len(report['images']), 'image')}, {plural(report['frames'], 'frame')} in {_time(report)}; "
            f"rendered on {d['render']}, inferred on {d['inference']}; output read as {m['output_kind']}")


def _time(report: dict) -> str:
    """How long the audit took: of a merged one, the time summed over its parts (what it cost) and, where it
    is known, the wall-clock time (a fan-out's: its parts ran at once); a job array's parts ran whenever the
    scheduler ran them, so only their sum is known."""
    seconds, frames = report["seconds"], report["frames"]
    parts = report.get("shards")
    if not parts:
        return f"{seconds:.1f} s ({frames / seconds if seconds else 0.0:.1f} frames/s)"
    summed = sum(p["seconds"] for p in parts)
    wall = "" if all(p["server"].endswith(".json") for p in parts) else \
        f", {seconds:.1f} s wall-clock ({frames / seconds if seconds else 0.0:.1f} frames/s)"
    return (f"{summed:.1f} s summed over its {len(parts)} parts ({frames / summed if summed else 0.0:.1f} frames/s)"
            + wall)


def parts(report: dict) -> list[list[str]]:
    """A merged report's parts: where each ran (a server, or a part's file), its images, frames, time."""
    return [[p["server"], str(p["images"]), str(p["frames"]), f"{p['seconds']:.2f} s", p["device"]["inference"]]
            + [", ".join(p.get("failed_on", [])) or "–"] for p in report.get("shards", [])]


PARTS_HEAD = ["part", "images", "frames", "time", "inferred on", "failed before on"]


def target_line(report: dict) -> str | None:
    """With --target-halfwidth: whether the intervals got that narrow, after how many images, and with
    --choose-pairs the pairs per image chosen and why."""
    t = report.get("target")
    if t is None:
        return None
    of = f" of {t['images_listed']}" if t["images_listed"] else ""
    chosen = "".join(f"; {c['reason']}" for c in t.get("choices", []))
    if report["config"].get("choose_pairs") and not chosen:
        chosen = f"; pairs per image not chosen: the audit ended within the pilot ({PILOT_IMAGES} images)"
    if t["reached"]:
        return (f"target +-{t['halfwidth']:g}: reached after {plural(t['images'], 'image')}{of} (in content-hash "
                f"order); the rest were not audited{chosen}")
    widths = {name: halfwidth(p["p_top1_change"]) for name, p in report["protocols"].items()
              if p["p_top1_change"]["value"] is not None}
    worst = max(widths, key=widths.get) if widths else None
    return (f"target +-{t['halfwidth']:g} NOT reached: the images ran out after {plural(t['images'], 'image')}"
            + (f"; {worst} is still +-{widths[worst]:.3f}: audit more images" if worst else "") + chosen)


def audited(doc: dict) -> list[tuple[str, str]]:
    """What was audited (or profiled), with what: the model, its input, the runner, the preprocessing and
    where each value came from, the options, the tools."""
    m, pre, cfg = doc["model"], doc["model"]["preprocessing"], doc["config"]
    inp = m["input"]
    rows = [("model", f"{m['path']}, sha256 {m['sha256']}"),
            ("input", f"tensor '{inp['name']}', {inp['layout']} {inp['height'] or '?'}×{inp['width'] or '?'} "
                      f"{inp['dtype']}, batch {inp['batch'] or 'dynamic'}"),
            ("runner", f"{m['runner']} ({', '.join(m.get('providers', []))})"
                       + (f"; output read as {m['output_kind']}" if "output_kind" in m else "")),
            ("preprocessing", f"mean {pre['mean']}, std {pre['std']} on 0–{pre['pixel_range']:g} {pre['channel_order']}, "
                              f"output {pre['output']}"),
            ("came from", ", ".join(f"{k}: {o}" for k, o in pre.get("origins", {}).items())
             + f" (sidecar: {pre['source']})"),
            ("config", ", ".join(f"{k}={v}" for k, v in cfg.items())),
            ("tools", ", ".join(f"{k} {v}" for k, v in doc["tool"].items() if v and k != "name"))]
    return rows


def _properties(report: dict) -> list[tuple[str, str]]:
    m = report["model"]
    return [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in (
        ("model.path", m["path"]), ("model.sha256", m["sha256"]), ("shiftaudit.version", report["tool"]["version"]),
        ("frames", report["frames"]), ("images", len(report["images"])),
        *((f"config.{k}", v) for k, v in report["config"].items()))]


ORIGINS = ("options", "preset", "sidecar", "metadata")  # where a preprocessing value can come from
GUESSED = ("mean", "std", "pixel_range", "channel_order")  # what the audit guesses (the output is detected)


def _preprocessing(pre: dict) -> str:
    """What the model was fed, and where each value came from."""
    origins = pre.get("origins", {})
    given = "; ".join(f"{origin}{' ' + pre['preset'] if origin == 'preset' else ''}: "
                      f"{', '.join(k for k, o in origins.items() if o == origin)}"
                      for origin in ORIGINS if origin in origins.values())
    return (f"preprocessing: mean {pre['mean']} std {pre['std']} on 0-{pre['pixel_range']:g} {pre['channel_order']}, "
            f"output {pre['output']}" + (f" ({given})" if given else ""))


def guessed(pre: dict, model: str = "the model") -> list[str]:
    """A warning naming the preprocessing values nothing gave (ImageNet's defaults were used), and how to
    give them."""
    defaults = [k for k in GUESSED if pre.get("origins", {}).get(k) == "default"]
    if not defaults:
        return []
    return [f"{', '.join(defaults)} of {model} guessed: no option, preset, sidecar or ONNX metadata gave them, so "
            "ImageNet's were used; if it was trained otherwise these numbers are not its own: give them "
            "(--mean, --std, --pixel-range, --channel-order, or --preset imagenet|inception|zero-one|caffe, or "
            "a sidecar MODEL.json beside the model that gives them)"]


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


def _ray(r: dict) -> str:
    return (f"on Ray ({r['address']}): {plural(r['workers'], 'worker')}; {r['images_audited']} images audited, "
            f"{r['images_skipped']} skipped" + (f", {r['duplicates_dropped']} returned again by retried tasks and "
                                                "taken once" if r["duplicates_dropped"] else ""))


def _skipped(skipped: list[dict]) -> str:
    reasons = Counter("unusable" if s["protocol"] is None else f"too small for {s['protocol']}" for s in skipped)
    first = "; ".join(s["reason"] for s in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
    return f"skipped {', '.join(f'{n} {why}' for why, n in reasons.items())}: {first}"


COMPARISON_HEAD = ["protocol", "pairs", "P A", "P B", "increase B-A [95% CI]", "McNemar p", "MAC increase [95% CI]",
                   "agreement"]


@dataclass(frozen=True)
class ComparisonSummary:
    """What the views say about a comparison of two engines (``shiftaudit.compare/v1``)."""

    a: dict  # engine A's model (the baseline)
    b: dict  # engine B's model
    images: int
    judged: list[Judged]
    verdict: Verdict | None
    head: list[str]
    rows: list[list[str]]  # `COMPARISON_HEAD`, then the gate when gated
    disagreements: list[dict]
    warnings: list[str]

    @property
    def checks(self) -> list[Check]:
        return [j.check for j in self.judged]

    @property
    def first_disagreement(self) -> str | None:
        if not self.disagreements:
            return None
        d = self.disagreements[0]
        return (f"first disagreement: {d['image']} {d['protocol']} unit {d['index']} frame {d['frame']}: "
                f"A {d.get('a_name', d['a'])}, B {d.get('b_name', d['b'])}")


def summarise_comparison(comparison: dict, checks: list[Check], gates: Gates = Gates()) -> ComparisonSummary:
    """What ``comparison`` says, with the outcomes of its increase ``checks``."""
    judged = [judge(c, gates, comparison["images"], None) for c in checks]
    rows = []
    for name, p in comparison["protocols"].items():
        agreement = p["agreement"]["frames"]["value"]
        rows.append([name, str(p["pairs"]), estimate(p["a"]["p_top1_change"]), estimate(p["b"]["p_top1_change"]),
                     estimate(p["p_top1_change_increase"], True), f"{p['mcnemar_p']:.3g}",
                     estimate(p["mac_increase"], True), "–" if agreement is None else f"{agreement:.3f}",
                     *([gate([j for j in judged if j.check.protocol == name]).text] if judged else [])])
    return ComparisonSummary(comparison["a"]["model"], comparison["b"]["model"], comparison["images"], judged,
                             verdict(judged), COMPARISON_HEAD + (["gate"] if judged else []), rows,
                             comparison["disagreements"],
                             [w for side in ("a", "b") for w in guessed(comparison[side]["model"]["preprocessing"],
                                                                        f"{side.upper()} ({comparison[side]['model']['path']})")])
