"""Open Inference Protocol (v2) bodies: an inference request (JSON, or JSON followed by binary tensor
data) into the model's input, and ``Scores`` into the response.

Binary tensor data (the extension tritonclient uses for ``binary_data=True``): the header
``Inference-Header-Content-Length: N`` says the first N bytes are the JSON request; each input
whose ``parameters`` hold ``binary_data_size`` has that many bytes next, in order: the tensor's
elements in row-major order, little-endian, or for BYTES, each element as a 4-byte little-endian
length and its bytes. Outputs come back the same way when the request asks (``binary_data`` on
an output, or ``binary_data_output`` on the request). The classification extension
(``"classification": K`` on the ``probabilities`` output) answers the K most probable classes of
each row as BYTES "probability:index:label".
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from softreg.serve.errors import RequestError
from softreg.serve.signature import OUTPUTS, input_specs
from softreg.serve.v1_body import load_json

NUMERIC = {"UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "<i1", "INT16": "<i2",
           "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
DATATYPES = (*NUMERIC, "BOOL", "BYTES", "BF16")
MAX_ROWS = 10_000  # per request, as in v1


def bad(message: str) -> RequestError:
    return RequestError(400, message)


@dataclass
class Input:
    """One input tensor: ``data`` a NumPy array of ``shape`` (numeric) or a list of bytes (BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict
    data: object = None


@dataclass
class Output:
    name: str
    binary: bool
    classification: int = 0


@dataclass
class InferRequest:
    id: str | None
    parameters: dict
    inputs: list[Input]
    outputs: list[Output] = field(default_factory=list)


def _parameters(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, (bool, int, float, str)) for v in value.values()):
        raise bad(f"{where} \"parameters\" must be an object of booleans, numbers and strings.")
    return value


def _flag(parameters: dict, key: str, where: str, default: bool = False) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise bad(f"{where} parameter {key!r} must be true or false; got {value!r}.")
    return value


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    """The request of a v2 infer body; RequestError 400 naming the first thing wrong."""
    binary = b""
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise bad(f"Inference-Header-Content-Length {header_length!r} must be the byte length of the JSON "
                      f"part, at most the body's {len(body)} bytes.")
        body, binary = body[: int(header_length)], body[int(header_length):]
    form = "{\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}"
    doc = load_json(body, form)
    if not isinstance(doc, dict):
        raise bad(f"the request must be a JSON object {form}; got a {type(doc).__name__}.")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad(f"\"id\" must be a string; got {type(request_id).__name__}.")
    parameters = _parameters(doc.get("parameters"), "the request's")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad(f"the request needs \"inputs\", a non-empty list of tensors; send {form}.")
    parsed = [_input(t, i) for i, t in enumerate(inputs)]
    _fill_binary(parsed, binary)
    for tensor in parsed:
        if tensor.data is None:
            raise bad(f"input {tensor.name!r} has no \"data\" (and no binary_data_size parameter).")
    default_binary = _flag(parameters, "binary_data_output", "the request's")
    return InferRequest(request_id, parameters, parsed, _outputs(doc.get("outputs"), default_binary))


def _input(tensor, i: int) -> Input:
    where = f"input {i}"
    if not isinstance(tensor, dict):
        raise bad(f"{where} must be an object {{\"name\", \"shape\", \"datatype\", \"data\"}}.")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str) or not name:
        raise bad(f"{where} needs a \"name\" (a string).")
    where = f"input {name!r}"
    if datatype not in DATATYPES:
        raise bad(f"{where} has datatype {datatype!r}; use one of {', '.join(DATATYPES)}.")
    if datatype in ("BF16", "BOOL"):
        raise bad(f"{where}: {datatype} tensors are not taken here; send FP32 (or another numeric datatype).")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise bad(f"{where} needs a \"shape\", a non-empty list of non-negative integers; got {shape!r}.")
    if math.prod(shape) > 10 ** 9:
        raise bad(f"{where} has shape {shape}, far larger than any request body; check the shape.")
    parameters = _parameters(tensor.get("parameters"), where)
    out = Input(name, datatype, shape, parameters)
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise bad(f"{where}: binary_data_size must be a non-negative integer; got {size!r}.")
        if "data" in tensor:
            raise bad(f"{where} has both \"data\" and binary_data_size; send one.")
        return out
    if "data" in tensor:
        out.data = _json_data(tensor["data"], datatype, shape, where)
    return out


def _flatten(data) -> list:
    flat, stack = [], [data]
    while stack:  # iterative: nesting depth is whatever the JSON parser allowed
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def _json_data(data, datatype: str, shape: list[int], where: str):
    if datatype != "BYTES":  # the common case at NumPy's speed; anything odd is explained below
        try:
            fast = np.asarray(data)
        except (ValueError, TypeError):  # ragged nesting
            fast = None
        if fast is not None and fast.size == math.prod(shape) and (
                fast.dtype.kind in "iu" or (fast.dtype.kind == "f" and datatype.startswith("FP"))):
            if datatype.startswith("FP"):
                return fast.astype(np.float64).reshape(shape)
            info = np.iinfo(np.dtype(NUMERIC[datatype]))
            if fast.size and info.min <= fast.min() and fast.max() <= info.max:
                return fast.astype(NUMERIC[datatype]).reshape(shape)
    values = _flatten(data if isinstance(data, list) else [data])
    if len(values) != math.prod(shape):
        raise bad(f"{where} has {len(values)} values in \"data\" but its shape {shape} holds {math.prod(shape)}.")
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in values):
            raise bad(f"{where}: BYTES data in JSON must be strings (send binary data for raw bytes).")
        return [v.encode() for v in values]
    floats = datatype.startswith("FP")
    for j, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (not floats and isinstance(v, float)):
            kind = "numbers" if floats else "integers"
            raise bad(f"{where}: element {j} is {v!r}; {datatype} data must be {kind}.")
    dtype = np.dtype(NUMERIC[datatype])
    if not floats:
        info = np.iinfo(dtype)
        out_of_range = [v for v in values if not info.min <= v <= info.max]
        if out_of_range:
            raise bad(f"{where}: {out_of_range[0]} does not fit {datatype}.")
    return np.asarray(values, dtype=np.float64 if floats else dtype).reshape(shape)


def _fill_binary(inputs: list[Input], binary: bytes) -> None:
    at = 0
    for tensor in inputs:
        if "binary_data_size" not in tensor.parameters:
            continue
        size = tensor.parameters["binary_data_size"]
        chunk = binary[at : at + size]
        if len(chunk) != size:
            raise bad(f"input {tensor.name!r} says binary_data_size {size} but only {len(chunk)} bytes of binary "
                      "data follow the JSON part.")
        at += size
        tensor.data = _binary_data(chunk, tensor)
    if at != len(binary):
        raise bad(f"{len(binary) - at} bytes follow the JSON part that no input's binary_data_size accounts for.")


def _binary_data(chunk: bytes, tensor: Input):
    n, where = math.prod(tensor.shape), f"input {tensor.name!r}"
    if tensor.datatype == "BYTES":
        items, at = [], 0
        while at < len(chunk):
            if at + 4 > len(chunk):
                raise bad(f"{where}: BYTES data ends inside an element's 4-byte length.")
            (length,) = struct.unpack_from("<I", chunk, at)
            if at + 4 + length > len(chunk):
                raise bad(f"{where}: a BYTES element says {length} bytes but fewer follow.")
            items.append(chunk[at + 4 : at + 4 + length])
            at += 4 + length
        if len(items) != n:
            raise bad(f"{where} has {len(items)} BYTES elements but its shape {tensor.shape} holds {n}.")
        return items
    dtype = np.dtype(NUMERIC[tensor.datatype])
    if len(chunk) != n * dtype.itemsize:
        raise bad(f"{where}: shape {tensor.shape} of {tensor.datatype} needs {n * dtype.itemsize} bytes; "
                  f"binary_data_size is {len(chunk)}.")
    return np.frombuffer(chunk, dtype=dtype).reshape(tensor.shape)


def _outputs(value, default_binary: bool) -> list[Output]:
    if value is None:
        return [Output(name, default_binary) for name in OUTPUTS]
    if not isinstance(value, list) or not value:
        raise bad("\"outputs\" must be a non-empty list of {\"name\": ...} (or left out for all of them).")
    out = []
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if name not in OUTPUTS:
            raise bad(f"output {i} is {name!r}; this model's outputs are {', '.join(OUTPUTS)}.")
        if any(o.name == name for o in out):
            raise bad(f"output {name!r} is asked for twice.")
        parameters = _parameters(item.get("parameters"), f"output {name!r}")
        k = parameters.get("classification", 0)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise bad(f"output {name!r}: classification must be a positive number of classes; got {k!r}.")
        if k and name != "probabilities":
            raise bad(f"output {name!r}: classification applies to the \"probabilities\" output only.")
        out.append(Output(name, _flag(parameters, "binary_data", f"output {name!r}", default_binary), k))
    return out


# ------------------------------------------------------------------ into the model, and back


def model_input(predictor, request: InferRequest):
    """(X, notes) for ``predictor`` from the request's one input; UserInputError / RequestError when unfit."""
    accepted = [spec.name for spec in input_specs(predictor)]
    if len(request.inputs) != 1:
        raise bad(f"send one input tensor, one of {', '.join(accepted)}; got {len(request.inputs)}.")
    tensor = request.inputs[0]
    if tensor.name not in accepted:
        raise bad(f"this model has no input {tensor.name!r}; its inputs are {', '.join(accepted)} "
                  f"(GET /v2/models/{predictor.name} describes them).")
    rows = tensor.shape[0]
    if rows == 0 or rows > MAX_ROWS:
        raise bad(f"input {tensor.name!r} has {rows} rows; send 1 to {MAX_ROWS} per request.")
    names = [f"{tensor.name}[{i}]" for i in range(rows)]
    if tensor.name == "features":
        if tensor.datatype == "BYTES":
            raise bad("input 'features' holds numbers; use a numeric datatype such as FP32 (or input 'rows').")
        image = predictor.image_shape
        if not (len(tensor.shape) == 2 or (image is not None and tuple(tensor.shape[1:]) == image)):
            wanted = f"[N, {predictor.n_features}]" + (f" or [N, {image[0]}, {image[1]}]" if image else "")
            raise bad(f"input 'features' has shape {tensor.shape}; this model takes {wanted}.")
        return predictor.encode_rows(tensor.data, names=names), None
    if tensor.datatype != "BYTES" or len(tensor.shape) != 1:
        raise bad(f"input {tensor.name!r} is a BYTES tensor of shape [N]; got {tensor.datatype} {tensor.shape}.")
    if tensor.name == "images":
        invert, fit = tensor.parameters.get("invert", "auto"), tensor.parameters.get("fit", "auto")
        if invert not in ("auto", "yes", "no") or fit not in ("auto", "resize"):
            raise bad("input 'images': parameter invert is auto, yes or no; fit is auto or resize.")
        return predictor.encode_inputs(list(tensor.data), names=names, invert=invert, fit=fit)
    return predictor.encode_inputs([_row(b, names[i], predictor.inputs().sparse) for i, b in enumerate(tensor.data)],
                                   names=names)


def _row(item: bytes, name: str, sparse: bool):
    try:
        text = item.decode()
    except UnicodeDecodeError:
        raise bad(f"{name} is not UTF-8 text; a row is JSON text" + (" or \"index:value\" text." if sparse else ".")) from None
    if sparse and not text.lstrip().startswith("{"):
        return text
    try:
        row = json.loads(text, parse_constant=lambda c: _refuse(c, name))
    except RequestError:
        raise
    except (ValueError, RecursionError) as exc:
        raise bad(f"{name} is not valid JSON ({exc}); a row is a JSON list or object.") from None
    if not isinstance(row, (list, dict)):
        raise bad(f"{name} must be a JSON list or object; got {type(row).__name__}.")
    return row


def _refuse(constant: str, name: str):
    raise bad(f"{name} contains {constant}; send finite numbers only.")


def _bytes_tensor(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def response(predictor, request: InferRequest, scores) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the answer: JSON, or JSON followed by binary outputs."""
    n = len(scores)
    outputs, blobs = [], []
    for out in request.outputs:
        if out.name == "probabilities" and out.classification:
            best, indices, labels = scores.top(out.classification)
            values = [f"{p:.7g}:{i}:{label}".encode() for row in zip(best.tolist(), indices.tolist(), labels)
                      for p, i, label in zip(*row)]
            datatype, shape, data = "BYTES", [n, best.shape[1]], values
        elif out.name == "probabilities":
            datatype, shape, data = "FP32", list(scores.probabilities.shape), scores.probabilities
        elif out.name == "label":
            datatype, shape, data = "BYTES", [n], [label.encode() for label in scores.labels]
        else:
            datatype, shape, data = "INT64", [n], scores.indices
        tensor = {"name": out.name, "datatype": datatype, "shape": shape}
        if out.binary:
            blob = _bytes_tensor(data) if datatype == "BYTES" else data.numpy().astype(NUMERIC[datatype]).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = [b.decode() for b in data] if datatype == "BYTES" else data.reshape(-1).tolist()
        outputs.append(tensor)
    doc = {"model_name": predictor.name, "model_version": predictor.version}
    if request.id is not None:
        doc["id"] = request.id
    if scores.any_warnings():  # parameter values are scalars in the protocol: the lists travel as JSON text
        doc["parameters"] = {"warnings": json.dumps(scores.warnings)}
    doc["outputs"] = outputs
    header = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {"Content-Type": "application/octet-stream",
                                      "Inference-Header-Content-Length": str(len(header))}
