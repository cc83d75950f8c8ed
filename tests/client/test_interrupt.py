"""Ctrl-C keeps the work: a real SIGINT to a real ``audit-client`` process, in process and on a real server,
ends the audit with a partial report (exit 130), which ``--resume`` continues to the report an
uninterrupted run gives (its time aside); a second Ctrl-C quits at once; the server's audits are found
again with ``list`` and ``get``."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support import EXAMPLE_MODEL, assert_valid_report, write_image
from tests.support.server_process import ServerProcess, wait_for

CLIENT = str(Path(sys.executable).with_name("audit-client"))
# 40 images at 4 pairs: 1,600 frames, ten seconds or more on two cores: long enough to be interrupted
OPTIONS = ["--pairs-per-image", "4", "--no-progress"]
TIMED = ("seconds", "audit")  # what differs between an interrupted-and-resumed run and an uninterrupted one


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(3)
    for i in range(40):
        write_image(d / f"img{i:02d}.png", rng.integers(0, 256, (112 + i % 5, 150, 3), dtype=np.uint8))
    return d


@pytest.fixture(scope="module")
def uninterrupted(many, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("full") / "full.json"
    run = subprocess.run([CLIENT, "--engine", str(EXAMPLE_MODEL), "--images", str(many), *OPTIONS, "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has installed its own SIGTERM handler (Python catches SIGINT from the start; the
    audit's interruption handler adds SIGTERM), read from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"SigCgt:\s*([0-9a-f]+)", status)[1], 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([CLIENT, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _same_audit(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in TIMED} == {k: v for k, v in b.items() if k not in TIMED}


def test_ctrl_c_writes_the_images_finished_and_resume_gives_the_uninterrupted_report(many, uninterrupted, tmp_path):
    args = ["--engine", str(EXAMPLE_MODEL), "--images", str(many), *OPTIONS]
    proc = _start([*args, "--json", "part.json"], tmp_path)
    wait_for(lambda: _catches_sigterm(proc.pid), timeout=60)
    time.sleep(2.5)  # some images finish (40 frames each)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGINT: stopping after the batch in flight" in err and "--resume part.json" in err
    part = json.loads((tmp_path / "part.json").read_text())
    assert_valid_report(part)
    done, left = len(part["images"]), part["interrupted"]["images_left"]
    assert done >= 1 and left >= 1 and done + left == 40
    assert [r["image"] for r in part["images"]] == [r["image"] for r in uninterrupted["images"][:done]]
    assert f"interrupted: a partial report of the {done} images finished, {left} left" in out  # the table says so

    resumed = subprocess.run([CLIENT, *args, "--resume", "part.json", "--json", "resumed.json"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _same_audit(json.loads((tmp_path / "resumed.json").read_text()), uninterrupted)


def test_without_json_the_partial_report_is_saved_where_the_error_says_and_sigterm_acts_as_ctrl_c(many, tmp_path):
    proc = _start(["--engine", str(EXAMPLE_MODEL), "--images", str(many), *OPTIONS], tmp_path)
    wait_for(lambda: _catches_sigterm(proc.pid), timeout=60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    saved = re.search(r"the partial report is (\S+);", err)[1]
    assert json.loads((tmp_path / saved).read_text())["interrupted"]["images_left"] >= 1


def test_a_second_ctrl_c_quits_at_once(many, tmp_path):
    """Batches of 256 frames: the batch in flight takes seconds, and the second signal comes before its end."""
    proc = _start(["--engine", str(EXAMPLE_MODEL), "--images", str(many), *OPTIONS, "--pairs-per-image", "30",
                   "--batch", "256", "--json", "part.json"], tmp_path)
    wait_for(lambda: _catches_sigterm(proc.pid), timeout=60)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "SIGINT: stopping" in proc.stderr.readline(), timeout=60)  # the first was heard
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "quitting at once" in err
    assert not (tmp_path / "part.json").exists()


def test_a_resume_of_another_audit_is_refused_in_one_line(many, uninterrupted, tmp_path):
    partial = {**uninterrupted, "interrupted": {"images_left": 0, "left": []}}
    (tmp_path / "full.json").write_text(json.dumps(uninterrupted))
    (tmp_path / "other.json").write_text(json.dumps(partial))
    base = [CLIENT, "--engine", str(EXAMPLE_MODEL), "--images", str(many), *OPTIONS]
    for resume, extra, says in (("full.json", [], "ran to its end: there is nothing to resume"),
                                ("other.json", ["--seed", "5"], "was audited with --seed 0, this audit has 5"),
                                ("missing.json", [], "--resume missing.json: No such file")):
        run = subprocess.run([*base, *extra, "--resume", resume], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 2 and says in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_on_a_server_ctrl_c_cancels_the_audit_its_partial_report_resumes_and_list_finds_both(many, uninterrupted,
                                                                                            tmp_path):
    with_server = ServerProcess(EXAMPLE_MODEL.parent, tmp_path / "state").start()
    try:
        remote = ["--server", with_server.target, "--engine", EXAMPLE_MODEL.name, "--images", str(many), *OPTIONS]
        proc = _start([*remote, "--json", "part.json"], tmp_path)
        lines: list[str] = []
        wait_for(lambda: lines.append(proc.stderr.readline()) or "audit-client: audit " in lines[-1], timeout=60)
        audit_id = re.search(r"audit ([0-9a-f]{32}) on ", lines[-1])[1]  # printed as soon as the server accepts it
        assert f"audit-client get {audit_id} --server {with_server.target}" in lines[-1]
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        part = json.loads((tmp_path / "part.json").read_text())
        assert_valid_report(part)
        assert part["audit"] == {"id": audit_id, "server": with_server.target}
        left = part["interrupted"]["images_left"]

        got = subprocess.run([CLIENT, "get", audit_id, "--server", with_server.target, "--json", "got.json"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert got.returncode == 130, got.stderr  # the server kept the partial report
        assert json.loads((tmp_path / "got.json").read_text())["interrupted"] == part["interrupted"]

        here = subprocess.run([CLIENT, "--engine", str(EXAMPLE_MODEL), "--images", str(many), *OPTIONS, "--resume",
                               "part.json", "--json", "here.json"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)  # a server's partial report resumes in process too
        assert here.returncode == 0, here.stderr
        _same_audit(json.loads((tmp_path / "here.json").read_text()), uninterrupted)
        resumed = subprocess.run([CLIENT, *remote, "--resume", "part.json", "--json", "resumed.json"], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        whole = json.loads((tmp_path / "resumed.json").read_text())
        _same_audit(whole, uninterrupted)
        second = whole["audit"]["id"]

        listed = subprocess.run([CLIENT, "list", "--server", with_server.target], capture_output=True, text=True,
                                timeout=60)
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.splitlines()
        assert rows[0].split() == ["audit", "state", "model", "started", "images", "verdict"]
        newest, older = rows[2], rows[3]  # newest first, under the head and its rule
        assert newest.startswith(f" {second}   succeeded   {EXAMPLE_MODEL.name}") and " 40 " in newest
        assert older.startswith(f" {audit_id}   cancelled") and f"({left} left)" in older
        assert "most sensitive: " in newest
        # with gates, each one's verdict under them: no interval lies above 1; every MAC but null's is above 0
        for gates, verdict in ((["--max-p-top1-change", "1"], "all 5 gates passed"),
                               (["--max-mac", "0", "--gate-on", "value"], "4 of 5 gates failed")):
            gated = subprocess.run([CLIENT, "--server", with_server.target, "list", *gates], capture_output=True,
                                   text=True, timeout=60)
            assert gated.returncode == 0 and verdict in gated.stdout.splitlines()[2], gated.stdout
    finally:
        with_server.stop()
