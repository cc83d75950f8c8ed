"""Where the invariance breaks: the per-layer shiftability profile of an ONNX model (paper §3, Fig. 3-4;
docs/layers.md). `graph` finds the spatial activations and exposes them, `shiftability` measures a pair
of them, `profile` runs the frames through and sums the measures."""
from .graph import SELECTIONS, Graph, Tensor
from .profile import SCHEMA, LayerOptions, merge_profiles, profile_layers

__all__ = ["SCHEMA", "SELECTIONS", "Graph", "LayerOptions", "Tensor", "merge_profiles", "profile_layers"]
