"""The TF-Serving / KServe v1 request body: parse it, decode its instances, name what is wrong.

A body is ``{"instances": [...]}``; each instance is a list of raw feature values (for image
models the flattened pixels, 0..pixel_max), a mapping {feature name: value} for tables that
know their feature names, or ``{"b64": "<PNG or JPEG bytes, base64>"}``. Optional
``"return_inputs": true`` (a softreg extension, used by the page) adds what the model saw.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import torch

from softreg.errors import UserInputError

MAX_INSTANCES = 10_000  # per request; the body limit usually binds first


class RequestError(Exception):
    """A bad request: ``status`` (4xx) and a message naming the problem and the fix."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Decoded:
    """X : raw model input of shape (N, n_features); notes : per-row warnings."""

    X: torch.Tensor
    notes: list[list[str]]
    return_inputs: bool


def _no_constants(name: str):
    raise RequestError(422, f"the body contains {name}, which is not a number JSON allows; "
                            "send finite numbers only.")


def parse_body(raw: bytes) -> tuple[list, bool]:
    """The instances of a request body, and whether it asks for the model's inputs back."""
    try:
        doc = json.loads(raw, parse_constant=_no_constants)
    except RequestError:
        raise
    except RecursionError:
        raise RequestError(400, "the body is nested too deeply; send {\"instances\": [...]}.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc}); send {{\"instances\": [...]}}.") from None
    if not isinstance(doc, dict):
        raise RequestError(400, f"the body must be a JSON object {{\"instances\": [...]}}; got a {type(doc).__name__}.")
    if "instances" not in doc:
        raise RequestError(400, "the body has no \"instances\" field; send {\"instances\": [...]}"
                                + (" (the columnar \"inputs\" form is not supported)." if "inputs" in doc else "."))
    instances = doc["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError(422, "\"instances\" must be a non-empty list of instances; got "
                                + (f"a {type(instances).__name__}." if not isinstance(instances, list) else "[]."))
    if len(instances) > MAX_INSTANCES:
        raise RequestError(413, f"{len(instances)} instances in one request; send at most {MAX_INSTANCES}.")
    return instances, doc.get("return_inputs") is True


def _image_bytes(instance: dict, i: int) -> bytes:
    if set(instance) != {"b64"} or not isinstance(instance["b64"], str):
        raise RequestError(422, f"instance {i}: an image instance is {{\"b64\": \"<base64 of PNG or JPEG bytes>\"}}"
                                f"; got keys {sorted(instance)[:5]}.")
    try:
        return base64.b64decode(instance["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, f"instance {i}: \"b64\" is not valid base64; encode the image bytes "
                                "with standard base64.") from None


def decode_instances(predictor, instances: list, return_inputs: bool = False) -> Decoded:
    """Turn the instances into the model's raw input, in order, with each one's notes.

    Library errors (wrong feature count, NaN, undecodable image) become 422s.
    """
    if getattr(predictor, "sparse", False):
        return _decode_sparse(predictor, instances, return_inputs)
    F = predictor.n_features
    X = torch.empty(len(instances), F)
    notes: list[list[str]] = [[] for _ in instances]
    rows, row_at = [], []
    try:
        for i, instance in enumerate(instances):
            if isinstance(instance, dict) and "b64" in instance:
                prepared = predictor.prepare_image(_image_bytes(instance, i))
                X[i] = prepared.pixels.reshape(-1)
                notes[i] = list(prepared.warnings)
            else:
                rows.append(instance)
                row_at.append(i)
        if rows:
            X[row_at] = predictor.encode_rows(rows, names=[f"instance {i}" for i in row_at])
    except UserInputError as exc:
        message = str(exc)
        if message.startswith("image:"):
            message = f"instance {i}: {message}"
        raise RequestError(422, message) from None
    checks = predictor.check(X)
    merged = [list(dict.fromkeys([*n, *c])) for n, c in zip(notes, checks)]
    return Decoded(X, merged, return_inputs)


def _decode_sparse(predictor, instances: list, return_inputs: bool) -> Decoded:
    """A sparse (svmlight) model's instances: "index:value ..." text or {index: value} mappings,
    kept as one CSR tensor (a dense copy of wide rows could be larger than the request allows)."""
    for i, instance in enumerate(instances):
        if isinstance(instance, dict) and "b64" in instance:
            raise RequestError(422, f"instance {i}: this model reads sparse rows (\"index:value ...\" text or "
                                    "{index: value}), not images.")
    try:
        X = predictor.encode_rows(instances, names=[f"instance {i}" for i in range(len(instances))])
    except UserInputError as exc:
        raise RequestError(422, str(exc)) from None
    return Decoded(X, [[] for _ in instances], return_inputs)


def _input_of(predictor, X: torch.Tensor, i: int):
    """What the model saw for row i: the values (dense rows), or {index: value} as numbered in the
    training file (sparse rows)."""
    if not getattr(predictor, "sparse", False):
        return [round(v, 4) for v in X[i].tolist()]
    crow, col, val = X.crow_indices(), X.col_indices(), X.values()
    a, b = int(crow[i]), int(crow[i + 1])
    return {str(int(j) + predictor.index_base): round(float(v), 4) for j, v in zip(col[a:b], val[a:b])}


def response_body(predictor, decoded: Decoded, probs: torch.Tensor) -> bytes:
    """``{"predictions": [{"label", "probabilities"[, "warnings"][, "input"]}, ...]}`` as JSON bytes."""
    out = []
    for i, row in enumerate(probs.tolist()):
        best = max(range(len(row)), key=row.__getitem__)
        doc = {"label": predictor.classes[best], "probabilities": row}
        if decoded.notes[i]:
            doc["warnings"] = decoded.notes[i]
        if decoded.return_inputs:
            doc["input"] = _input_of(predictor, decoded.X, i)
        out.append(doc)
    return json.dumps({"predictions": out}, separators=(",", ":")).encode()
