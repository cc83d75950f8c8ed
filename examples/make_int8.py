"""Make ``efficientnet_lite0_int8.onnx``: the example model quantised to INT8 by ONNX Runtime's static
quantiser (QDQ, per-channel weights), calibrated on the example photographs with the model's own
preprocessing (its sidecar). The second engine of the README's differential audit (audit-client compare).

    python examples/make_int8.py    # writes examples/efficientnet_lite0_int8.onnx and its sidecar
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = Path(__file__).resolve().parent
MODEL = HERE / "efficientnet_lite0.onnx"
OUT = HERE / "efficientnet_lite0_int8.onnx"


class Photographs(CalibrationDataReader):
    """The example photographs, centre-cropped to the model's input and normalised as its sidecar says."""

    def __init__(self) -> None:
        pre = json.loads(MODEL.with_suffix(".json").read_text())
        mean, std = np.array(pre["mean"], np.float32), np.array(pre["std"], np.float32)
        name = onnx.load(MODEL, load_external_data=False).graph.input[0].name
        batches = []
        for path in sorted((HERE / "images").iterdir()):
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            s = min(h, w)
            crop = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
            x = (cv2.resize(crop, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) - mean) / std
            batches.append({name: x.transpose(2, 0, 1)[None]})
        self.batches = iter(batches)

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(MODEL), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(OUT), Photographs(), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    shutil.copy(MODEL.with_suffix(".json"), OUT.with_suffix(".json"))  # the same preprocessing and classes
    print(f"{OUT}: {OUT.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
