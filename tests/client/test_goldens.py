"""What every path of audit-client gives, pinned: each command a user runs (audits in process, on a
server, fanned out over two, a job array's parts and their merge, reports rendered again, fetched from
a server, compared, diffed, against a baseline, a layer profile, a precision target, and the usage
errors) on fixed models and images, with its exit status, its table and every file it writes, compared
with what the code gave when this was recorded (``python -m tests.client.test_goldens``).

Timings, versions, temporary paths, ports, audit ids, plots and thumbnails are scrubbed; everything else
is compared as text, JSON key order included (it is the text of stored reports). The engine's bits
depend on the CPU and the releases, so the comparison runs only where the example model gives the
recorded bits (`tests.engine.test_golden`'s fingerprints): elsewhere it is skipped, saying so.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shiftaudit.client.cli import main
from shiftaudit.client.remote import AuditClient
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, ROOT
from tests.support.models import cnn, feature_map
from tests.support.server_process import ServerProcess

GOLDENS = Path(__file__).with_name("goldens")
INT8 = EXAMPLE_MODEL.with_name("efficientnet_lite0_int8.onnx")
EVERY = ["--protocol", "crop", "--protocol", "embed-black", "--protocol", "embed-inpaint", "--protocol", "scale",
         "--protocol", "null", "--protocol", "translate-sweep", "--protocol", "scale-sweep", "--protocol", "size-sweep",
         "--size", "60", "--sweep-pixels", "2", "--sweep-step", "0.5", "--size-sweep", "60:100:20", "--seed", "3"]
QUICK = ["--protocol", "crop", "--protocol", "embed-black", "--protocol", "translate-sweep", "--sweep-pixels", "2",
         "--pairs-per-image", "2", "--seed", "5"]
VIEWS = ["--json", "{out}/{name}.json", "--markdown", "{out}/{name}.md", "--junit", "{out}/{name}.xml",
         "--html", "{out}/{name}.html"]


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # {placeholders} filled from the workspace


def _case(name: str, *argv: str) -> Case:
    return Case(name, tuple(argv))


CASES = [
    _case("audit", "--engine", "{model}", "--images", "{images}", *EVERY, "--labels", "{labels}",
          "--max-p-top1-change", "0.5", "--max-mac", "0.05", "--gate-on", "upper", *VIEWS),
    _case("audit-int8", "--engine", "{int8}", "--images", "{images}", *EVERY, "--labels", "{labels}",
          "--json", "{out}/{name}.json"),
    _case("audit-defaults", "--engine", "{strided}", "--images", "{photos}", "--protocol", "embed-black", "--protocol",
          "crop", "--size", "40", "--max-mac", "1", *VIEWS, "--no-thumbnails"),
    _case("report", "report", "{out}/audit.json", "--images", "{images}", "--max-mac", "0.5", *VIEWS),
    _case("report-stdin-gates", "report", "{out}/audit.json", "--max-p-top1-change", "0.01", "--json", "-"),
    _case("baseline", "--engine", "{int8}", "--images", "{images}", *EVERY, "--labels", "{labels}", "--baseline",
          "{out}/audit.json", "--max-increase-p-top1-change", "0.02", "--json", "{out}/{name}.json", "--markdown",
          "{out}/{name}.md"),
    _case("baseline-mismatch", "--engine", "{int8}", "--images", "{photos}", "--protocol", "crop", "--baseline",
          "{out}/audit.json", "--json", "{out}/{name}.json"),
    _case("compare", "compare", "--engine", "{model}", "--engine", "{int8}", "--images", "{images}", *QUICK,
          "--labels", "{labels}", "--max-increase-p-top1-change", "0.02", "--max-increase-mac", "0.5", *VIEWS),
    _case("diff", "diff", "{out}/audit.json", "{out}/audit-int8.json", "--max-increase-mac", "0.1", *VIEWS),
    _case("layers", "layers", "--engine", "{strided}", "--images", "{photos}", "--seed", "2", "--size", "40", "--json",
          "{out}/{name}.json", "--markdown", "{out}/{name}.md", "--html", "{out}/{name}.html"),
    _case("report-layers", "report", "{out}/audit-defaults.json", "--layers", "{out}/layers.json", "--markdown",
          "{out}/{name}.md", "--html", "{out}/{name}.html"),
    _case("shard-0", "--engine", "{model}", "--images", "{images}", *QUICK, "--labels", "{labels}", "--shard", "0/2",
          "--json", "{out}/{name}.json"),
    _case("shard-1", "--engine", "{model}", "--images", "{images}", *QUICK, "--labels", "{labels}", "--shard", "1/2",
          "--json", "{out}/{name}.json"),
    _case("merge", "merge", "{out}/shard-1.json", "{out}/shard-0.json", "--max-mac", "0.2", *VIEWS),
    _case("target", "--engine", "{model}", "--images", "{images}", "--protocol", "embed-black", "--protocol", "crop",
          "--target-halfwidth", "0.3", "--json", "{out}/{name}.json"),
    _case("server", "--engine", "lite0.onnx", "--server", "{server}", "--images", "{images}", *QUICK, "--labels",
          "{labels}", "--json", "{out}/{name}.json", "--markdown", "{out}/{name}.md"),
    _case("server-data-path", "--engine", "lite0.onnx", "--server", "{server}", "--data-path", "photos", *QUICK,
          "--max-mac", "0.001", "--json", "{out}/{name}.json"),
    _case("server-shard", "--engine", "lite0.onnx", "--server", "{server}", "--images", "{images}", *QUICK,
          "--labels", "{labels}", "--shard", "1/2", "--json", "{out}/{name}.json"),
    _case("fan-out", "--engine", "lite0.onnx", "--server", "{server}", "--server", "{server2}", "--images", "{images}",
          *QUICK, "--labels", "{labels}", "--json", "{out}/{name}.json", "--junit", "{out}/{name}.xml"),
    _case("get", "--server", "{server}", "get", "{audit_id}", "--json", "{out}/{name}.json", "--max-mac", "1"),
    # what a user can get wrong: one line each, the right exit status
    _case("error-ray-and-server", "--engine", "{model}", "--images", "{images}", "--ray", "local", "--server", "{server}"),
    _case("error-uri-without-ray", "--engine", "{model}", "--images", "s3://bucket/images"),
    _case("error-data-path-alone", "--engine", "{model}", "--data-path", "photos"),
    _case("error-server-without-images", "--engine", "lite0.onnx", "--server", "{server}"),
    _case("error-fan-out-data-path", "--engine", "lite0.onnx", "--server", "{server}", "--server", "{server2}",
          "--data-path", "photos"),
    _case("error-shard-with-fan-out", "--engine", "lite0.onnx", "--server", "{server}", "--server", "{server2}",
          "--images", "{images}", "--shard", "0/2"),
    _case("error-same-output-twice", "--engine", "{model}", "--images", "{images}", "--json", "{out}/x.json",
          "--markdown", "{out}/x.json"),
    _case("error-output-over-input", "--engine", "{model}", "--images", "{images}", "--labels", "{labels}", "--json",
          "{labels}"),
    _case("error-compare-one-engine", "compare", "--engine", "{model}", "--images", "{images}"),
    _case("error-compare-uri", "compare", "--engine", "{model}", "--engine", "{int8}", "--images", "s3://b/i"),
    _case("error-layers-rise", "layers", "--engine", "{strided}", "--images", "{photos}", "--size", "40", "--rise",
          "-1"),
    _case("error-layers-memory", "layers", "--engine", "{strided}", "--images", "{photos}", "--size", "40",
          "--max-memory", "0"),
    _case("error-layers-other-model", "report", "{out}/audit.json", "--layers", "{out}/layers.json", "--markdown",
          "{out}/x.md"),
    _case("error-no-model", "--engine", "{out}/missing.onnx", "--images", "{images}"),
    _case("error-not-a-classifier", "--engine", "{fmap}", "--images", "{photos}"),
    _case("error-shard-out-of-range", "--engine", "{model}", "--images", "{images}", "--shard", "3/2"),
    _case("error-merge-missing-shard", "merge", "{out}/shard-0.json"),
    _case("error-canvas", "--engine", "{model}", "--images", "{images}", "--canvas", "100x100"),
    _case("error-no-images", "--engine", "{model}", "--images", "{out}/empty"),
    _case("error-report-not-json", "report", "{labels}"),
    _case("error-ray-workers", "--engine", "{model}", "--images", "{images}", "--ray", "local", "--ray-workers", "0"),
    _case("error-pairs", "--engine", "{model}", "--images", "{images}", "--pairs-per-image", "0"),
    _case("error-unknown-protocol", "--engine", "{model}", "--images", "{images}", "--protocol", "rotate"),
    _case("error-class-map", "diff", "{out}/audit.json", "{out}/audit-int8.json", "--class-map", "{labels}"),
]


def _ppm(path: Path, h: int, w: int) -> None:
    """A small image whose bytes are the same on every machine (an encoder's are not)."""
    pixels = bytes((3 * x + 5 * y + 7 * c) % 256 for y in range(h) for x in range(w) for c in range(3))
    path.write_bytes(b"P6\n%d %d\n255\n" % (w, h) + pixels)


@dataclass
class Workspace:
    """The models, images and server the cases run against, and where they write."""

    root: Path
    server: ServerProcess

    @property
    def out(self) -> Path:
        return self.root / "out"

    def places(self) -> dict[str, str]:
        return {"model": str(EXAMPLE_MODEL), "int8": str(INT8), "strided": str(self.root / "models" / "strided.onnx"), "fmap": str(self.root / "models" / "fmap.onnx"),
                "images": str(self.root / "images"), "photos": str(self.root / "images" / "photos"),
                "labels": str(self.root / "labels.csv"), "out": str(self.out), "server": self.server.target,
                "server2": self.server.target.replace("127.0.0.1", "localhost")}


@contextlib.contextmanager
def workspace(root: Path) -> Iterator[Workspace]:
    """Images (the photographs, one too small for size 60, a file that is no image), labels, models (one
    without a sidecar: preprocessing by default), and a server whose model root holds the example model."""
    images = root / "images"
    shutil.copytree(EXAMPLE_IMAGES, images / "photos")
    _ppm(images / "tiny.ppm", 40, 48)
    (images / "notes.txt").write_text("not an image\n")
    (root / "labels.csv").write_text("photos/cat_chelsea.jpg,tabby\ncoffee_cup.jpg,504\nnowhere.jpg,1\n")
    models = root / "models"
    models.mkdir()
    cnn(models / "strided.onnx", hw=64, stride=2)
    feature_map(models / "fmap.onnx")
    served = root / "served"
    served.mkdir()
    for name in ("efficientnet_lite0.onnx", "efficientnet_lite0.json", "imagenet_classes.txt"):
        shutil.copy(EXAMPLE_MODEL.with_name(name), served / name.replace("efficientnet_lite0", "lite0"))
    (root / "out").mkdir()
    (root / "out" / "empty").mkdir()
    server = ServerProcess(served, root / "state", "--data-root", str(images), "--max-concurrent-audits", "2").start()
    try:
        yield Workspace(root, server)
    finally:
        server.stop()


def _scrub_json(value, key: str = ""):
    """A document with its timings, versions and ids replaced by placeholders (key order kept)."""
    if key == "seconds":
        return 0
    if key == "tool" and isinstance(value, dict):
        return {k: "*" for k in value}
    if isinstance(value, dict):
        return {k: _scrub_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v) for v in value]
    return value


def scrub(text: str, ws: Workspace) -> str:
    """Text with what changes from run to run replaced by placeholders."""
    for name, place in sorted(ws.places().items(), key=lambda kv: -len(kv[1])):
        text = text.replace(place, "{" + name + "}")
    text = text.replace(str(ws.root), "{root}").replace(str(ROOT), "{repo}")
    text = re.sub(r"<svg.*?</svg>", "<svg/>", text, flags=re.S)
    text = re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "data:image/jpeg;base64,...", text)
    # an audit id is 32 hex digits with a letter among them (all 32 decimal: a chance of 4e-7); the tallies'
    # integers can have 32 decimal digits too, and must stay
    text = re.sub(r"\b(?=\d*[a-f])[0-9a-f]{32}\b", "{audit_id}", text)
    text = re.sub(r"\d+\.\d+ s\b", "T s", text)
    text = re.sub(r"\d+\.\d+ frames/s", "R frames/s", text)
    text = re.sub(r'time="[\d.]+"', 'time="T"', text)
    text = re.sub(r"shiftaudit-report-\d+-\d+-\d+\.json", "shiftaudit-report-ID.json", text)
    text = re.sub(r"(onnxruntime|python|shiftaudit|tensorrt) [\d.]+\w*", r"\1 V", text)
    text = re.sub(r'("shiftaudit\.version" value=")[^"]*"', r'\1V"', text)
    return text


def _output(text: str, ws: Workspace) -> str:
    """A file or standard output, scrubbed; a JSON document with its timings and versions too."""
    try:
        return json.dumps(_scrub_json(json.loads(scrub(text, ws))), indent=1)
    except json.JSONDecodeError:
        return scrub(text, ws)


def run_case(case: Case, ws: Workspace, audit_id: str) -> dict:
    """One command as a user runs it: exit status, what it printed, and the files it wrote."""
    argv = [a.format(**ws.places(), name=case.name, audit_id=audit_id) for a in case.argv]
    before = set(ws.out.iterdir())
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), contextlib.chdir(ws.root):
        try:
            code = main(argv + (["--no-progress"] if argv[0] not in ("report", "merge", "diff", "--server") else []))
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    written = sorted(set(ws.out.iterdir()) - before)
    return {"argv": scrub(" ".join(argv), ws), "exit": code, "stdout": _output(stdout.getvalue(), ws),
            "stderr": scrub(stderr.getvalue(), ws), "files": {p.name: _output(p.read_text(), ws) for p in written if p.is_file()}}


def run_all(root: Path) -> dict[str, dict]:
    """Every case, in order (later ones read what earlier ones wrote)."""
    results = {}
    with workspace(root) as ws:
        audit_id = ""
        for case in CASES:
            results[case.name] = run_case(case, ws, audit_id)
            if case.name == "server":  # the audit "get" fetches: the newest
                with AuditClient(ws.server.target) as client:
                    audit_id = client.list()[0].audit_id
    return results


def environment_matches() -> str | None:
    """Why the recorded bits cannot be compared here, or None when they can."""
    from tests.engine.test_golden import GOLDEN, fingerprints

    golden, got = json.loads(GOLDEN.read_text()), fingerprints()
    for key in ("frames_sha256", "outputs_sha256", "probabilities_sha256"):
        if got[key] != golden[key]:
            return f"the example model gives other bits here ({key}): the recorded outputs cannot be compared"
    return None


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    why = environment_matches()
    if why:
        pytest.skip(why)
    return run_all(tmp_path_factory.mktemp("goldens"))


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_each_command_gives_what_it_gave_when_recorded(results, case):
    recorded = json.loads((GOLDENS / f"{case}.json").read_text())
    got = results[case]
    assert got["argv"] == recorded["argv"]
    assert got["exit"] == recorded["exit"], got["stderr"]
    assert got["stderr"] == recorded["stderr"]
    assert got["stdout"] == recorded["stdout"]
    assert sorted(got["files"]) == sorted(recorded["files"])
    for name, text in recorded["files"].items():
        assert got["files"][name] == text, name


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        recorded = run_all(Path(tmp))
    GOLDENS.mkdir(exist_ok=True)
    for name, result in recorded.items():
        (GOLDENS / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(recorded)} cases to {GOLDENS}", file=sys.stderr)
