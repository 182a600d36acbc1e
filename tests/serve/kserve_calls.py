"""The KServe SDK's calls against a softreg server, run by tests/serve/test_v2.py in the interpreter that
has kserve (its own virtual environment: kserve pins numpy, pandas and protobuf apart from softreg's).

    python kserve_calls.py URL < request.json > answers.json

request.json: {"v1": {"model", "instances"}, "v2": [{"model", "input", "shape", "datatype", "data"}]};
each v2 entry is sent twice, as JSON and as binary tensor data.
"""

import asyncio
import json
import sys

import numpy as np


async def main(url: str, request: dict) -> dict:
    import kserve
    from kserve.protocol.infer_type import RequestedOutput

    answers = {}
    v1 = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v1", timeout=60))
    try:
        answer = await v1.infer(url, {"instances": request["v1"]["instances"]}, model_name=request["v1"]["model"])
        answers["v1"] = {"live": await v1.is_server_live(url),
                         "ready": await v1.is_model_ready(url, request["v1"]["model"]),
                         "probabilities": [p["probabilities"] for p in answer["predictions"]]}
    finally:
        await v1.close()
    v2 = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", timeout=60))
    try:
        answers["v2"] = {"live": await v2.is_server_live(url), "ready": await v2.is_server_ready(url), "models": []}
        for case in request["v2"]:
            got = {"model_ready": await v2.is_model_ready(url, case["model"])}
            for binary in (False, True):
                dtype = object if case["datatype"] == "BYTES" else np.float32
                tensor = kserve.InferInput(case["input"], case["shape"], case["datatype"])
                tensor.set_data_from_numpy(np.array(case["data"], dtype=dtype).reshape(case["shape"]),
                                           binary_data=binary)
                outputs = [RequestedOutput("probabilities", {"binary_data": binary}), RequestedOutput("label")]
                infer = kserve.InferRequest(model_name=case["model"], infer_inputs=[tensor], request_id=f"k-{binary}",
                                            request_outputs=outputs)
                response = await v2.infer(url, infer, case["model"])
                by_name = {o.name: o for o in response.outputs}
                labels = [v.decode() if isinstance(v, bytes) else v for v in by_name["label"].as_numpy().tolist()]
                got["binary" if binary else "json"] = {
                    "id": response.id, "probabilities": by_name["probabilities"].as_numpy().tolist(), "labels": labels}
            answers["v2"]["models"].append(got)
    finally:
        await v2.close()
    return answers


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], json.load(sys.stdin)))))
