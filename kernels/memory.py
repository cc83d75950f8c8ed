"""Where the kernels' buffers live: the GPU (`DeviceMemory`, with a stream-ordered pool and our own
stream), or host arrays for the host build of the kernels (`HostMemory`), which is how everything
above the launch is checked without a GPU. `DeviceArray` is a rendered batch in either."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .launch import DeviceLauncher, HostLauncher, cuda_call


class HostMemory:
    """"Device" buffers that are NumPy arrays; addresses are host pointers."""

    device = "cpu"

    def __init__(self) -> None:
        self.launch = HostLauncher()

    def activate(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def upload(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array).copy()

    def empty(self, nbytes: int) -> np.ndarray:
        return np.empty(nbytes, np.uint8)

    @staticmethod
    def address(buf: np.ndarray) -> int:
        return buf.ctypes.data

    def download(self, buf: np.ndarray, out: np.ndarray) -> None:
        out.view(np.uint8).reshape(-1)[:] = buf.view(np.uint8).reshape(-1)[:out.nbytes]

    def poison(self, buf: np.ndarray) -> None:
        buf.view(np.uint8)[:] = 0xFF


class DeviceBuffer:
    """Memory from our stream-ordered pool: allocated and freed in the order of our stream, so a batch's
    buffer returns to the pool without stalling the device (cuMemFree would synchronise it)."""

    def __init__(self, memory: DeviceMemory, nbytes: int) -> None:
        self.memory, self.nbytes = memory, nbytes
        (self.ptr,) = cuda_call(memory.driver.cuMemAllocFromPoolAsync(max(nbytes, 1), memory.pool, memory.stream))

    def __del__(self) -> None:
        try:  # any thread may drop the last reference: make our context current there
            self.memory.activate()
            self.memory.driver.cuMemFreeAsync(self.ptr, self.memory.stream)
        except Exception:  # interpreter shutdown
            pass


class DeviceMemory:
    """GPU buffers from a pool of our own, and the launcher's non-blocking stream for every copy and
    launch: batch k+1 renders while an engine on the GPU runs batch k on its own stream, and
    ``finish`` waits for our stream only. Host arrays are copied in as they are (the driver stages
    pageable memory, so the caller may drop them when the call returns)."""

    device = "cuda"

    def __init__(self, device: int = 0) -> None:
        from cuda.bindings import driver

        self.driver = driver
        self.launch = DeviceLauncher(device)
        self.stream = self.launch.stream
        props = driver.CUmemPoolProps()
        props.allocType = driver.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        props.location.type = driver.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        props.location.id = device
        (self.pool,) = cuda_call(driver.cuMemPoolCreate(props))
        cuda_call(driver.cuMemPoolSetAttribute(self.pool, driver.CUmemPool_attribute.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                                               driver.cuuint64_t(2**64 - 1)))  # keep freed batches for reuse

    def activate(self) -> None:
        self.launch.activate()

    def finish(self) -> None:
        cuda_call(self.driver.cuStreamSynchronize(self.stream))

    def upload(self, array: np.ndarray) -> DeviceBuffer:
        array = np.ascontiguousarray(array)
        buf = DeviceBuffer(self, array.nbytes)
        cuda_call(self.driver.cuMemcpyHtoDAsync(buf.ptr, array.ctypes.data, array.nbytes, self.stream))
        return buf

    def empty(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(self, nbytes)

    @staticmethod
    def address(buf: DeviceBuffer) -> int:
        return int(buf.ptr)

    def download(self, buf: DeviceBuffer, out: np.ndarray) -> None:
        self.activate()
        cuda_call(self.driver.cuMemcpyDtoHAsync(out.ctypes.data, buf.ptr, out.nbytes, self.stream))
        self.finish()

    def poison(self, buf: DeviceBuffer) -> None:
        cuda_call(self.driver.cuMemsetD8Async(buf.ptr, 0xFF, buf.nbytes, self.stream))


Memory = HostMemory | DeviceMemory


@dataclass(frozen=True)
class DeviceArray:
    """An array where the kernels left it: an engine binds ``address`` on ``device`` in place, or takes
    a host copy with ``to_host``."""

    buffer: object  # DeviceBuffer or host array
    shape: tuple[int, ...]
    dtype: np.dtype
    memory: Memory

    @property
    def address(self) -> int:
        return self.memory.address(self.buffer)

    @property
    def device(self) -> str:
        return self.memory.device

    def to_host(self) -> np.ndarray:
        host = np.empty(self.shape, self.dtype)
        self.memory.download(self.buffer, host)
        return host
