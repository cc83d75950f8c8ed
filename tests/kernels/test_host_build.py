"""Where the CPU renderer comes from: the kernels' host build, shipped beside the sources (an image's build
stage), found in our cache, or compiled into it on first use; and the NumPy reference where none of these
can be had, which the report names, and which audits alike (inpainted frames aside, within tolerance)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from shiftaudit import kernels
from shiftaudit.kernels.__main__ import main as kernels_main
from shiftaudit.server.engine.render import cpu
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """Nothing built yet: no shipped build, an empty cache, and the per-process lookups forgotten (before
    and after, so later tests find the real build again)."""
    monkeypatch.setattr(kernels, "SHIPPED", tmp_path / "shipped")
    monkeypatch.setenv("SHIFTAUDIT_CACHE", str(tmp_path / "cache"))
    kernels.host_library.cache_clear()
    cpu.unbuilt.cache_clear()
    yield tmp_path
    kernels.host_library.cache_clear()
    cpu.unbuilt.cache_clear()


def test_first_use_compiles_into_the_cache_and_later_uses_load_it(fresh):
    name = kernels.host_file("render")
    kernels.host_library("render")
    built = fresh / "cache" / "kernels" / name
    assert built.is_file()
    stamp = built.stat().st_mtime_ns
    kernels.host_library.cache_clear()
    kernels.host_library("render")  # loaded, not compiled again
    assert built.stat().st_mtime_ns == stamp


def test_a_shipped_build_is_taken_before_the_cache(fresh, capsys):
    assert kernels_main(["--build-host"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == list(kernels.KERNELS)
    for name in kernels.KERNELS:
        assert (fresh / "shipped" / kernels.host_file(name)).is_file()
    (fresh / "cache").write_text("")  # no cache can be made there: a shipped build needs none
    assert cpu.CpuRenderer().name == "cpu (compiled kernels)"


def test_an_edited_kernel_is_built_again(fresh, monkeypatch):
    before = kernels.host_file("render")
    source = kernels.source("render")
    monkeypatch.setattr(kernels, "source", lambda name: source + "\n// edited\n" if name == "render" else source)
    assert kernels.host_file("render") != before


def test_without_a_compiler_the_numpy_reference_renders_and_the_report_says_so(fresh, monkeypatch):
    from shiftaudit.client import audit
    from shiftaudit.server.engine.runners import EngineOptions

    options = {"protocols": ("crop", "embed-black", "embed-inpaint"), "pairs_per_image": 1}
    compiled = audit(EXAMPLE_MODEL, EXAMPLE_IMAGES, options, engine_options=EngineOptions(device="cpu"))
    kernels.host_library.cache_clear()
    cpu.unbuilt.cache_clear()
    monkeypatch.setenv("SHIFTAUDIT_CACHE", str(fresh / "empty"))
    monkeypatch.setenv("CXX", str(fresh / "no-such-compiler"))
    monkeypatch.setenv("PATH", str(fresh / "no-bin"))
    with pytest.raises(kernels.KernelBuildError, match="no C.. compiler"):
        kernels.build_host("render", fresh / "out")
    fallback = audit(EXAMPLE_MODEL, EXAMPLE_IMAGES, options, engine_options=EngineOptions(device="cpu"))
    assert compiled["device"]["render"] == "cpu (compiled kernels)"
    assert fallback["device"]["render"].startswith("cpu (NumPy; no compiled kernels: no C++ compiler")
    for protocol in ("crop", "embed-black"):
        assert fallback["tallies"][protocol] == compiled["tallies"][protocol]
    a, b = (r["protocols"]["embed-inpaint"] for r in (compiled, fallback))
    assert a["pairs"] == b["pairs"] and a["mac"]["value"] == pytest.approx(b["mac"]["value"], abs=1e-5)


def test_the_build_command_says_what_failed(tmp_path):
    env = {"PATH": str(tmp_path), "CXX": "/nonexistent/c++", "SHIFTAUDIT_CACHE": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "shiftaudit.kernels", "--build-host"], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "python -m shiftaudit.kernels: error: no C++ compiler (c++ or g++) to build the kernels for the host"]
