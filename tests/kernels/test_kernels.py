"""The CUDA kernels: NVRTC builds for sm_80/sm_90, their host build against the NumPy reference (here,
without a GPU), and the same checks on a GPU (marked gpu). NVRTC comes with cuda-bindings (the gpu
extra): without it the tests that compile skip, saying so; the host build needs only a C++ compiler."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from shiftaudit import kernels
from shiftaudit.kernels.check import check_half, check_render, check_score
from shiftaudit.kernels.memory import HostMemory


def _has_nvrtc() -> bool:
    try:
        return importlib.util.find_spec("cuda.bindings") is not None
    except ModuleNotFoundError:  # no "cuda" package at all
        return False


nvrtc = pytest.mark.skipif(not _has_nvrtc(), reason="cuda-bindings (the gpu extra: pip install 'shiftaudit[gpu]') "
                                                   "is not installed, so NVRTC cannot compile the kernels")


@nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", kernels.KERNELS)
def test_every_kernel_compiles_to_a_cubin(name, arch):
    data = kernels.cubin(name, arch)
    assert data[:4] == b"\x7fELF"


@nvrtc
def test_cubins_are_cached_by_source_arch_and_nvrtc(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTAUDIT_CACHE", str(tmp_path))
    first = kernels.cubin("score", "sm_90")
    cached = list((tmp_path / "kernels").glob("score-*-sm_90-nvrtc*.cubin"))
    assert len(cached) == 1 and cached[0].read_bytes() == first
    cached[0].write_bytes(b"\x7fELF marker")  # a second call reads the cache, not NVRTC
    assert kernels.cubin("score", "sm_90") == b"\x7fELF marker"


@nvrtc
def test_a_broken_kernel_reports_the_compiler_log(tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "HERE", tmp_path)
    monkeypatch.setenv("SHIFTAUDIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "compat.h").write_text("")
    (tmp_path / "bad.cu").write_text('extern "C" __global__ void k() { undeclared(); }')
    with pytest.raises(kernels.KernelBuildError, match="undeclared"):
        kernels.cubin("bad", "sm_90")


def test_host_build_render_is_bit_exact_with_the_reference():
    assert "exact" in check_render(HostMemory())


def test_host_build_half_rounding_and_scoring():
    memory = HostMemory()
    check_half(memory)
    check_score(memory)


@nvrtc
def test_check_command_needs_no_gpu():
    run = subprocess.run([sys.executable, "-m", "shiftaudit.kernels", "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(kernels.KERNELS)
    assert all(": ok: " in line for line in lines)


@pytest.mark.gpu
def test_device_render_half_and_score_match_the_reference():
    from shiftaudit.kernels.memory import DeviceMemory

    memory = DeviceMemory()
    assert "exact" in check_render(memory)  # outputs poisoned with NaN first
    check_half(memory)
    check_score(memory)


@pytest.mark.gpu
def test_device_batches_return_to_the_pool_from_any_thread():
    """Batches dropped by the consumer thread go back to our pool: memory stays bounded."""
    import threading

    import numpy as np
    from cuda.bindings import driver

    from shiftaudit.kernels.check import random_frames
    from shiftaudit.kernels.memory import DeviceMemory
    from shiftaudit.kernels.renderer import KernelRenderer
    from shiftaudit.kernels.tables import Normalisation

    memory = DeviceMemory()
    renderer = KernelRenderer(memory)
    sources, frames = random_frames(np.random.default_rng(0), (64, 64))
    norm = Normalisation(np.full(3, 1 / 255, np.float32), np.zeros(3, np.float32), "RGB")
    reserved = driver.CUmemPool_attribute.CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT

    def drop_in_a_thread(batch) -> None:
        worker = threading.Thread(target=lambda: batch.__setitem__(0, None))
        worker.start()
        worker.join()

    sizes = []
    for _ in range(30):
        drop_in_a_thread([renderer.render(sources, frames, norm, "NCHW", np.float32)])
        memory.finish()
        sizes.append(int(memory.driver.cuMemPoolGetAttribute(memory.pool, reserved)[1]))
    assert sizes[-1] == sizes[5], sizes  # nothing grows after the first few batches


def test_check_command_without_nvrtc_says_what_to_install():
    """Without the gpu extra (here: `cuda` made unimportable, as in an environment that lacks it)."""
    hide = ("import runpy, sys; sys.modules['cuda'] = None; sys.argv = ['x', '--check']; "
            "runpy.run_module('shiftaudit.kernels', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "pip install 'shiftaudit[gpu]' (no GPU needed)" in run.stderr and run.stderr.count("\n") == 1
