"""Where the invariance breaks: the per-layer shiftability profile of an ONNX model (paper §3, Fig. 3-4;
docs/layers.md). `graph` finds the spatial activations and exposes them, `shiftability` measures a pair
of them, `profile` runs the frames through and sums the measures. The profile's option group is defined
here, so that a command line's help needs none of those (they load when first named: `__getattr__`)."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..errors import OptionError, named
from ..options import named_options, option
from ..protocols import STEP_PROTOCOLS

if TYPE_CHECKING:
    from .graph import SELECTIONS, Graph, Tensor
    from .profile import SCHEMA, merge_profiles, profile_layers

PROTOCOL = STEP_PROTOCOLS[0]  # a profile's unless told: the whole image stays in view as it moves
# the audit options a profile takes (the sweeps' and gates' mean nothing here); its config lists these
OPTIONS = ("protocols", "seed", "canvas", "size", "shift", "pairs_per_image", "filter", "batch", "strict")
_LAZY = {"SELECTIONS": "graph", "Graph": "graph", "Tensor": "graph", "SCHEMA": "profile", "merge_profiles": "profile",
         "profile_layers": "profile"}


@named_options
@dataclass(frozen=True)
class LayerOptions:
    """What a profile measures and how much it may hold; the profile's ``config`` lists them after the audit
    options it takes (`OPTIONS`)."""

    tensors: tuple[str, ...] = option(("stages",), "stages: each subsampling op's output, the last tensor at each "
                                      "stride and the last before global pooling; all: every spatial activation; or "
                                      "tensor names", many=True, metavar="stages|all|NAME", group="layers")
    rise: float = option(0.05, "the finding: the first tensor whose mean pooled invariance or shiftability error "
                         "exceeds the tensor before it's by more than this", parse=float, group="layers")
    max_memory_mib: int = option(1024, "activations one engine call may hand back, MiB; fewer frames per call "
                                 "below it", flag="--max-memory", parse=int, metavar="MiB", group="layers")

    def __post_init__(self) -> None:
        if isinstance(self.tensors, (list, str)):
            object.__setattr__(self, "tensors", (self.tensors,) if isinstance(self.tensors, str) else
                               tuple(self.tensors))
        if not self.rise > 0:
            raise OptionError(f"{named('rise')} must be above 0, not {self.rise:g}")
        if self.max_memory_mib < 1:
            raise OptionError(f"{named('max_memory_mib')} must be at least 1 MiB")

    @property
    def max_memory(self) -> int:
        """Bytes of the chosen activations one batch may hand back."""
        return self.max_memory_mib * 2**20

    def to_json(self) -> dict:
        return {"tensors": list(self.tensors), "rise": self.rise, "max_memory_mib": self.max_memory_mib}


def __getattr__(name: str) -> Any:
    """The profile's machinery, imported on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCHEMA", "SELECTIONS", "Graph", "LayerOptions", "Tensor", "merge_profiles", "profile_layers"]
