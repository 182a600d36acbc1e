"""TF-Serving / KServe v1 bodies: parse a predict request, turn its instances into model input, write the answer.

Row form: ``{"instances": [...]}``, each instance a list of raw feature values (image models: the
flattened pixels, 0..pixel_max), a mapping {feature name: value} for tables that know their
feature names, ``{"b64": "<picture bytes, base64>"}``, or "index:value ..." text for sparse
models; answered ``{"predictions": [{"label", "probabilities"[, "warnings"]}, ...]}``.
Columnar form: ``{"inputs": [...]}`` (a list of rows) or ``{"inputs": {column: [values...]}}``
(one list per named column, all of one length); answered ``{"outputs": {"label": [...],
"label_index": [...], "probabilities": [[...], ...]}}`` (and ``"warnings"`` beside it when any).
``"signature_name"`` may only be ``serving_default``; ``"return_inputs": true`` (a softreg
extension, used by the page) adds what the model saw.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from softreg.serve.errors import RequestError

MAX_INSTANCES = 10_000  # per request; the body limit usually binds first
SIGNATURE = "serving_default"


@dataclass
class V1Request:
    """instances : the rows, pictures as ``bytes``; columnar : answer ``{"outputs": ...}``."""

    instances: list
    columnar: bool
    return_inputs: bool


def _no_constants(name: str):
    raise RequestError(422, f"the body contains {name}, which is not a number JSON allows; "
                            "send finite numbers only.")


def load_json(raw: bytes, what: str):
    """Parse JSON text, naming what was expected; NaN and Infinity are refused (422)."""
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except RequestError:
        raise
    except RecursionError:
        raise RequestError(400, f"the body is nested too deeply; send {what}.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc}); send {what}.") from None


def parse_body(raw: bytes, column_names: list[str] | None) -> V1Request:
    """A v1 predict body as instances (rows, or picture ``bytes`` decoded from ``{"b64": ...}``)."""
    form = "{\"instances\": [...]}"
    doc = load_json(raw, form)
    if not isinstance(doc, dict):
        raise RequestError(400, f"the body must be a JSON object {form}; got a {type(doc).__name__}.")
    signature = doc.get("signature_name", SIGNATURE)
    if signature not in (SIGNATURE, ""):
        raise RequestError(400, f"signature_name {signature!r} is not a signature of this model; it has one, "
                                f"{SIGNATURE!r} (or leave signature_name out).")
    if ("instances" in doc) == ("inputs" in doc):
        raise RequestError(400, "the body must have exactly one of \"instances\" (row form) and \"inputs\" "
                                f"(columnar form); send {form}.")
    columnar = "inputs" in doc
    instances = doc["inputs"] if columnar else doc["instances"]
    if columnar and isinstance(instances, dict):
        instances = _columns_to_rows(instances, column_names)
    key = "inputs" if columnar else "instances"
    if not isinstance(instances, list) or not instances:
        raise RequestError(422, f"\"{key}\" must be a non-empty list of instances; got "
                                + (f"a {type(instances).__name__}." if not isinstance(instances, list) else "[]."))
    if len(instances) > MAX_INSTANCES:
        raise RequestError(413, f"{len(instances)} instances in one request; send at most {MAX_INSTANCES}.")
    items = [_picture(x, i) if isinstance(x, dict) and "b64" in x else x for i, x in enumerate(instances)]
    return V1Request(items, columnar, doc.get("return_inputs") is True)


def _columns_to_rows(columns: dict, names: list[str] | None) -> list:
    """{column: [v0, v1, ...]} as rows {column: v_i}."""
    if names is None:
        raise RequestError(422, "this model's features have no names, so \"inputs\" cannot be a mapping; send "
                                "\"inputs\": [[...], ...] (one list of values per instance).")
    unknown = [str(k) for k in columns if k not in names]
    if unknown:
        raise RequestError(422, f"\"inputs\" names unknown column(s) {unknown[:5]}; this model's are "
                                f"{', '.join(names[:20])}.")
    if not columns or not all(isinstance(v, list) for v in columns.values()):
        raise RequestError(422, "each column of \"inputs\" must be a list of values, one per instance.")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise RequestError(422, f"the columns of \"inputs\" have different lengths {sorted(lengths)[:5]}; give "
                                "each column one value per instance.")
    n = lengths.pop()
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _picture(instance: dict, i: int) -> bytes:
    if set(instance) != {"b64"} or not isinstance(instance["b64"], str):
        raise RequestError(422, f"instance {i}: an image instance is {{\"b64\": \"<base64 of PNG or JPEG bytes>\"}}"
                                f"; got keys {sorted(map(str, instance))[:5]}.")
    try:
        return base64.b64decode(instance["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, f"instance {i}: \"b64\" is not valid base64; encode the image bytes "
                                "with standard base64.") from None


def response_body(predictor, request: V1Request, X, scores) -> bytes:
    """The answer to ``request`` from its ``Scores`` (X: the model's input, for ``return_inputs``)."""
    if request.columnar:
        doc = {"outputs": {"label": scores.labels, "label_index": scores.indices.tolist(),
                           "probabilities": scores.probabilities.tolist()}}
        if scores.any_warnings():
            doc["warnings"] = scores.warnings
        return json.dumps(doc, separators=(",", ":")).encode()
    out = []
    for i, prediction in enumerate(scores.predictions()):
        doc = prediction.to_dict()
        if request.return_inputs:
            doc["input"] = predictor.input_values(X, i)
        out.append(doc)
    return json.dumps({"predictions": out}, separators=(",", ":")).encode()


def metadata(predictor, signature) -> dict:
    """TF-Serving's model metadata (GET /v1/models/NAME/metadata): the one signature's tensors."""
    return {"model_spec": {"name": predictor.name, "signature_name": "", "version": predictor.version},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: {
                "inputs": {t.name: t.tf() for t in signature.input_specs(predictor)},
                "outputs": {t.name: t.tf() for t in signature.output_specs(predictor)},
                "method_name": "tensorflow/serving/predict"}}}}}
