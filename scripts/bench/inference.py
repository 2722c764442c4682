#!/usr/bin/env python3
"""The requests of the inference benchmark (scripts/bench-inference), and MLServer's side of it.

    inference.py FOLDER DATA.csv
    inference.py check FOLDER REST_PORT GRPC_PORT ML_REST_PORT ML_GRPC_PORT

Writes into FOLDER, for N in 1 and 32 instances (the first N rows of DATA.csv, the target `count` left out):
  predict-N.json      /predict's body
  oip-N.json          the Open Inference Protocol's REST body for Cyclone: one tensor per feature
  oip-N.bin           the same as a serialized gRPC ModelInferRequest (model "bikes")
  mlserver-N.json     the same columns for MLServer's scikit-learn runtime (a pandas request: content_type pd)
  mlserver-N.bin      its gRPC form (model "bikes-sklearn")
and MLServer's model: FOLDER/mlserver/{settings.json, bikes-sklearn/model-settings.json, model.joblib}, a
scikit-learn pipeline (one-hot categories, HistGradientBoostingRegressor of depth 6, 300 iterations at 0.1,
like `cyclone train --family gbdt`'s defaults) fitted on all of DATA.csv.
"""
import json
import pathlib
import sys

import joblib
import pandas as pd
from mlserver.grpc import dataplane_pb2 as pb
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

CATEGORICAL = ["hour", "season", "weather"]
BOOLEAN = ["workingday"]
NUMERIC = ["temp", "humidity", "wind"]
FEATURES = ["hour", "workingday", "season", "weather", "temp", "humidity", "wind"]


def tensors(rows, hour_as_text):
    """One OIP tensor per feature: (name, datatype, values)."""
    out = []
    for name in FEATURES:
        values = list(rows[name])
        if name in NUMERIC:
            out.append((name, "FP64", [float(v) for v in values]))
        elif name in BOOLEAN:
            out.append((name, "BOOL", [bool(v) for v in values]))
        elif name == "hour" and not hour_as_text:
            out.append((name, "INT64", [int(v) for v in values]))
        else:
            out.append((name, "BYTES", [str(v) for v in values]))
    return out


def rest(tensor_list, parameters=None):
    body = {"inputs": [{"name": n, "datatype": d, "shape": [len(v)], "data": v} for n, d, v in tensor_list]}
    if parameters:  # MLServer: BYTES as text
        for tensor in body["inputs"]:
            if tensor["datatype"] == "BYTES":
                tensor["parameters"] = {"content_type": "str"}
    if parameters:
        body["parameters"] = parameters
    return body


def grpc(model, tensor_list, content_type=None):
    request = pb.ModelInferRequest(model_name=model)
    if content_type:
        request.parameters["content_type"].string_param = content_type
    for name, datatype, values in tensor_list:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        if datatype == "FP64":
            tensor.contents.fp64_contents.extend(values)
        elif datatype == "BOOL":
            tensor.contents.bool_contents.extend(values)
        elif datatype == "INT64":
            tensor.contents.int64_contents.extend(values)
        else:
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
            if content_type:  # MLServer keeps BYTES as bytes unless told they are text
                tensor.parameters["content_type"].string_param = "str"
    return request.SerializeToString()


def check(folder, rest, grpc_port, ml_rest, ml_grpc):
    """The 32-instance requests answered by every route: Cyclone's three must agree to the bit, MLServer's two
    with each other; Cyclone's and MLServer's models differ, so their gap is printed, not judged."""
    import urllib.request
    import grpc as grpcio
    import numpy as np
    from mlserver.grpc import dataplane_pb2_grpc

    def post(url, path):
        request = urllib.request.Request(url, data=(folder / path).read_bytes(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def infer(port, path):
        with grpcio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = dataplane_pb2_grpc.GRPCInferenceServiceStub(channel)
            response = stub.ModelInfer(pb.ModelInferRequest.FromString((folder / path).read_bytes()))
            raw = response.raw_output_contents[0] if response.raw_output_contents else None
            if raw is not None:
                return np.frombuffer(raw, dtype="<f8").tolist()
            return list(response.outputs[0].contents.fp64_contents)

    ours = [p["value"] for p in post(f"http://127.0.0.1:{rest}/predict", "predict-32.json")["predictions"]]
    oip = post(f"http://127.0.0.1:{rest}/v2/models/bikes/infer", "oip-32.json")["outputs"][0]["data"]
    ours_grpc = infer(grpc_port, "oip-32.bin")
    theirs = post(f"http://127.0.0.1:{ml_rest}/v2/models/bikes-sklearn/infer", "mlserver-32.json")["outputs"][0]["data"]
    theirs_grpc = infer(ml_grpc, "mlserver-32.bin")
    if not (ours == oip == ours_grpc):
        sys.exit("bench: Cyclone's routes answer differently for the same instances")
    if not np.allclose(theirs, theirs_grpc):
        sys.exit("bench: MLServer's REST and gRPC answers differ: the requests are not equivalent")
    gap = float(np.mean(np.abs(np.array(ours) - np.array(theirs))))
    print(f"answers: Cyclone's routes agree to the bit, MLServer's two agree; mean |Cyclone - MLServer| = {gap:.2f} "
          f"(two gradient-boosted models of the same data; the target's mean is {np.mean(ours):.1f})")


def main():
    if sys.argv[1] == "check":
        return check(pathlib.Path(sys.argv[2]), *sys.argv[3:7])
    folder, data = pathlib.Path(sys.argv[1]), sys.argv[2]
    frame = pd.read_csv(data)
    frame["workingday"] = frame["workingday"].astype(str).str.lower() == "true"
    for n in (1, 32):
        rows = frame.head(n)
        instances = [{name: (row[name].item() if hasattr(row[name], "item") else row[name]) for name in FEATURES}
                     for _, row in rows.iterrows()]
        (folder / f"predict-{n}.json").write_text(json.dumps({"instances": instances}))
        ours = tensors(rows, hour_as_text=False)
        (folder / f"oip-{n}.json").write_text(json.dumps(rest(ours)))
        (folder / f"oip-{n}.bin").write_bytes(grpc("bikes", ours))
        theirs = tensors(rows, hour_as_text=True)
        (folder / f"mlserver-{n}.json").write_text(json.dumps(rest(theirs, {"content_type": "pd"})))
        (folder / f"mlserver-{n}.bin").write_bytes(grpc("bikes-sklearn", theirs, "pd"))

    frame["hour"] = frame["hour"].astype(str)
    pipeline = Pipeline([
        ("encode", ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)],
                                     remainder="passthrough")),
        ("model", HistGradientBoostingRegressor(max_depth=6, max_iter=300, learning_rate=0.1, random_state=0)),
    ])
    pipeline.fit(frame[FEATURES], frame["count"])
    server = folder / "mlserver"
    (server / "bikes-sklearn").mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, server / "bikes-sklearn" / "model.joblib")
    (server / "bikes-sklearn" / "model-settings.json").write_text(json.dumps({
        "name": "bikes-sklearn", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }))
    (server / "settings.json").write_text(json.dumps({
        "http_port": 18741, "grpc_port": 18742, "metrics_port": 18743, "parallel_workers": 1,
    }))
    print(f"wrote the requests and MLServer's model to {folder}")


if __name__ == "__main__":
    main()
