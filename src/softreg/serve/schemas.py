"""What each endpoint answers, as models for the OpenAPI document (/openapi.json); the handlers write
the same JSON by hand, and tests/serve/test_openapi.py holds every documented answer to a real one."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class Error(BaseModel):
    """Every error of either protocol: one line naming the problem and the fix."""

    error: str


class NotReady(BaseModel):
    """503 while a model is loading (or could not be loaded)."""

    ready: Literal[False]
    error: str


class Alive(BaseModel):
    """KServe v1 liveness (GET / without text/html in Accept)."""

    status: Literal["alive"]


class Health(BaseModel):
    status: Literal["ok", "loading"]
    models: list[str]


class Column(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"]
    categories: Optional[list[str]] = None


class ModelStatus(BaseModel):
    """A model's status and what it expects (v1, GET /v1/models/NAME)."""

    name: str
    version: str
    ready: bool
    classes: list[str]
    n_features: int
    image_shape: Optional[list[int]]
    pixel_max: Optional[float]
    model: Literal["softmax", "logistic", "mlp"]
    feature_names: Optional[list[str]]
    dataset: Optional[str]
    test_samples: int
    columns: Optional[list[Column]]


class ModelNotReady(BaseModel):
    name: str
    ready: Literal[False]
    error: str


class ModelList(BaseModel):
    models: list[Union[ModelStatus, ModelNotReady]]


class V1Prediction(BaseModel):
    label: str
    probabilities: list[float] = Field(description="in the order of the model's classes")
    warnings: Optional[list[str]] = Field(None, description="only when there are some")
    input: Optional[Union[list[float], dict[str, float]]] = Field(None, description="with return_inputs")


class Predictions(BaseModel):
    """The row form's answer."""

    predictions: list[V1Prediction]


class ColumnarOutputs(BaseModel):
    label: list[str]
    label_index: list[int]
    probabilities: list[list[float]]


class Columnar(BaseModel):
    """The columnar form's answer."""

    outputs: ColumnarOutputs
    warnings: Optional[list[list[str]]] = None


class TensorInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    dtype: str
    name: str
    tensor_shape: dict


class ModelSpec(BaseModel):
    name: str
    signature_name: str
    version: str


class V1Metadata(BaseModel):
    """TF-Serving's model metadata: one signature, serving_default."""

    model_spec: ModelSpec
    metadata: dict


class Weights(BaseModel):
    shape: list[int]
    limit: float
    titles: list[str]
    templates: list[list[float]]


class Sample(BaseModel):
    index: int
    label: str
    instance: list[float]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


Scalar = Union[bool, int, float, str]


class RequestInput(BaseModel):
    name: Literal["features", "images", "rows"]
    shape: list[int]
    datatype: str
    parameters: Optional[dict[str, Scalar]] = None
    data: Optional[list] = Field(None, description="row-major, flat or nested; left out when the tensor "
                                                   "is sent as binary data (parameters.binary_data_size)")


class RequestOutput(BaseModel):
    name: Literal["probabilities", "label", "label_index"]
    parameters: Optional[dict[str, Scalar]] = None


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[dict[str, Scalar]] = None
    inputs: list[RequestInput]
    outputs: Optional[list[RequestOutput]] = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Optional[dict[str, Scalar]] = None
    data: Optional[list] = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: Optional[str] = None
    parameters: Optional[dict[str, Scalar]] = Field(None, description="warnings: JSON text, one list per row")
    outputs: list[ResponseOutput]


def error(description: str) -> dict:
    return {"model": Error, "description": description}


BINARY = {"schema": {"type": "string", "format": "binary",
                     "description": "the JSON object (Inference-Header-Content-Length bytes) then the binary "
                                    "tensor data"}}
