"""The tensors a served model takes and gives, named once for both protocols' metadata.

Inputs (a request sends one of them):
  features  FP32 [-1, n_features]   raw values as in training (image models: also [-1, H, W]);
                                    any integer or float datatype is accepted and converted
  images    BYTES [-1]              encoded pictures (PNG, JPEG, GIF, BMP, WebP), image models only
  rows      BYTES [-1]              one row each: JSON (a list in training order, or an object keyed
                                    by column / feature name); sparse models: "index:value ..." text
Outputs:
  probabilities FP32 [-1, C] (columns in ``classes`` order), label BYTES [-1], label_index INT64 [-1]
"""

from __future__ import annotations

from dataclasses import dataclass

OUTPUTS = ("probabilities", "label", "label_index")
TF_DTYPES = {"FP32": "DT_FLOAT", "BYTES": "DT_STRING", "INT64": "DT_INT64"}  # TF-Serving's names


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    description: str

    def v2(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def tf(self) -> dict:
        """TF-Serving's TensorInfo as its REST metadata writes it."""
        return {"dtype": TF_DTYPES[self.datatype], "name": self.name,
                "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in self.shape], "unknown_rank": False}}


def input_specs(predictor) -> list[TensorSpec]:
    inputs = predictor.inputs()
    specs = []
    if inputs.n_features is not None:
        shaped = f" (or [-1, {inputs.image_shape[0]}, {inputs.image_shape[1]}])" if inputs.image_shape else ""
        specs.append(TensorSpec("features", "FP32", (-1, inputs.n_features),
                                f"raw feature values as in training{shaped}; any integer or float datatype"))
    if inputs.images:
        specs.append(TensorSpec("images", "BYTES", (-1,), "encoded pictures: PNG, JPEG, GIF, BMP or WebP"))
    row = ("\"index:value ...\" text or a JSON object {index: value}" if inputs.sparse else
           "a JSON list in training order" + (", or an object keyed by " + ", ".join(inputs.names[:20])
                                               if inputs.names else ""))
    specs.append(TensorSpec("rows", "BYTES", (-1,), f"one row per element: {row}"))
    return specs


def output_specs(predictor) -> list[TensorSpec]:
    classes = len(predictor.classes)
    return [TensorSpec("probabilities", "FP32", (-1, classes), "class probabilities, in the order of classes: "
                       + ", ".join(predictor.classes[:20])),
            TensorSpec("label", "BYTES", (-1,), "the most probable class"),
            TensorSpec("label_index", "INT64", (-1,), "its index in classes")]
