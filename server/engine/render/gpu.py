"""The GPU renderer: placements become tables on the host (`taps.frame_tables`), our kernels
render them on GPU 0 (`shiftaudit.kernels.renderer`), and the batch stays on the device."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shiftaudit.kernels.memory import DeviceArray, DeviceMemory, Memory
from shiftaudit.kernels.renderer import KernelRenderer
from shiftaudit.kernels.tables import Normalisation

from ..taps import frame_tables
from . import Frame


class GpuRenderer:
    def __init__(self, memory: Memory | None = None) -> None:
        """On GPU 0 (compiling or loading the kernels first), or on ``memory`` (the host build in tests)."""
        self.memory = memory or DeviceMemory()
        self.kernels = KernelRenderer(self.memory)
        self.device = self.memory.device
        launch = self.memory.launch
        self.name = f"cuda:0 {launch.name} ({launch.arch})" if self.device == "cuda" else "host build of the kernels"

    def render(self, frames: Sequence[Frame], norm: Normalisation, layout: str, dtype: np.dtype) -> DeviceArray:
        return self.kernels.render([(image.digest, image.pixels) for image, _ in frames],
                                   [frame_tables(p) for _, p in frames], norm, layout, dtype)
