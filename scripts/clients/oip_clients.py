#!/usr/bin/env python3
"""The Open Inference Protocol routes of `predict`, driven by clients nobody here wrote (scripts/oip-clients).

    oip_clients.py --suite triton|kserve --csv ROWS.csv --database-url URL NAME=http://HOST:PORT,HOST:GRPC_PORT ...

For each served model (NAME, its REST base URL, its gRPC address), the same instances go through `/predict`
and through NVIDIA's tritonclient (HTTP with JSON and binary tensors; gRPC with raw contents) and the kserve
SDK's clients (REST v2 and v1; gRPC with typed contents). Every answer must equal `/predict`'s to the last
bit, every instance must be stored once with the input `/predict` stored for it (and the rows stored must number the instances answered), and
refusals must come back as the protocol's errors.
Exits non-zero on the first failure, saying what differed.
"""
import argparse
import asyncio
import csv
import json
import subprocess
import sys
import urllib.request

import numpy as np

# tritonclient's gRPC module and the kserve SDK each register the protocol's messages (package `inference`)
# in protobuf's default pool, so one process can hold only one of them: --suite chooses.


def fail(message):
    print(f"oip-clients: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def get(url):
    with urllib.request.urlopen(url) as response:
        return json.loads(response.read())


def psql(database_url, query):
    out = subprocess.run(["psql", database_url, "-AtXq", "-c", query], check=True, capture_output=True, text=True)
    return [line.split("|") for line in out.stdout.splitlines() if line]


def instances_from_csv(path, metadata, count):
    """The first `count` rows as /predict instances, each value typed as the model's metadata says."""
    types = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    instances = []
    with open(path) as file:
        for row in csv.DictReader(file):
            instance = {}
            for name, datatype in types.items():
                text = row[name]
                if datatype == "FP64":
                    instance[name] = float(text)
                elif datatype == "BOOL":
                    instance[name] = text == "true"
                else:
                    instance[name] = int(text) if text.lstrip("-").isdigit() else text
            instances.append(instance)
            if len(instances) == count:
                break
    return instances


def tensors(instances, metadata):
    """One numpy column per input, as a Triton user builds them: FP64, BOOL, INT64 for integral categories, BYTES."""
    columns = {}
    for tensor in metadata["inputs"]:
        name, datatype = tensor["name"], tensor["datatype"]
        values = [instance[name] for instance in instances]
        if datatype == "FP64":
            columns[name] = ("FP64", np.array(values, dtype=np.float64))
        elif datatype == "BOOL":
            columns[name] = ("BOOL", np.array(values, dtype=bool))
        elif all(isinstance(v, int) for v in values):
            columns[name] = ("INT64", np.array(values, dtype=np.int64))
        else:
            columns[name] = ("BYTES", np.array([v.encode() for v in values], dtype=np.object_))
    return columns


def expected_from_predict(answer, classes):
    values = []
    for prediction in answer["predictions"]:
        if classes is None:
            values.append(prediction["value"])
        else:
            values.append((prediction["class"], [prediction["probabilities"][c] for c in classes]))
    return values


def compare(name, via, expected, predict, proba):
    """`predict` (and `proba`) as numpy arrays from a client, against /predict's answers, bit for bit."""
    check(len(predict) == len(expected), f"{name} via {via}: {len(predict)} predictions for {len(expected)} instances")
    for index, want in enumerate(expected):
        got = predict[index]
        if isinstance(want, tuple):
            got_class = got.decode() if isinstance(got, bytes) else str(got)
            check(got_class == want[0], f"{name} via {via}: instance {index} class {got_class!r}, /predict {want[0]!r}")
            row = [float(p) for p in proba[index]]
            check(row == want[1], f"{name} via {via}: instance {index} probabilities {row}, /predict {want[1]}")
        else:
            check(float(got) == want and np.float64(got).tobytes() == np.float64(want).tobytes(),
                  f"{name} via {via}: instance {index} predicted {float(got)!r}, /predict {want!r}")


def check_stored(database_url, name, via, ids, reference_ids):
    """Each id stored once, with the same stored input as the /predict row of the same instance."""
    check(len(set(ids)) == len(ids), f"{name} via {via}: prediction ids repeat")
    quoted = ",".join(f"'{i}'" for i in ids + reference_ids)
    rows = psql(database_url, f"select id, input::text from prediction where id in ({quoted})")
    stored = {}
    for row_id, stored_input in rows:
        check(row_id not in stored, f"{name} via {via}: prediction {row_id} stored twice")
        stored[row_id] = stored_input
    for index, (row_id, reference) in enumerate(zip(ids, reference_ids)):
        check(row_id in stored, f"{name} via {via}: prediction {row_id} (instance {index}) is not stored")
        check(stored[row_id] == stored[reference],
              f"{name} via {via}: instance {index} stored as {stored[row_id]}, through /predict as {stored[reference]}")


class Model:
    """One served model and what /predict answered for the instances every client sends again."""

    def __init__(self, name, base, grpc_address, csv_path, database_url, count):
        self.name, self.base, self.grpc_address, self.database_url = name, base, grpc_address, database_url
        self.host = base.split("://", 1)[1]
        self.metadata = get(f"{base}/v2/models/{name}")
        self.classes = json.loads(self.metadata["parameters"]["classes"]) if "parameters" in self.metadata else None
        self.instances = instances_from_csv(csv_path, self.metadata, count)
        reference = post(f"{base}/predict", {"instances": self.instances})
        self.expected = expected_from_predict(reference, self.classes)
        self.reference_ids = [p["id"] for p in reference["predictions"]]
        self.columns = tensors(self.instances, self.metadata)
        self.outputs = ["predict", "prediction_id"] + (["predict_proba"] if self.classes else [])
        self.stored = 0  # instances the clients had answered, each of which must be stored once

    def answered(self, via, ids):
        check_stored(self.database_url, self.name, via, ids, self.reference_ids)
        self.stored += len(ids)


def triton_suite(model):
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException
    name, metadata, classes, expected, columns, outputs = (model.name, model.metadata, model.classes, model.expected,
                                                           model.columns, model.outputs)
    host, grpc_address = model.host, model.grpc_address
    # tritonclient over HTTP: binary tensors both ways (its default), then JSON both ways.
    client = triton.InferenceServerClient(url=host)
    check(client.is_server_live() and client.is_server_ready(), f"{name}: tritonclient: server not live and ready")
    check(client.is_model_ready(name), f"{name}: tritonclient: model not ready")
    triton_metadata = client.get_model_metadata(name)
    check([i["name"] for i in triton_metadata["inputs"]] == [i["name"] for i in metadata["inputs"]],
          f"{name}: tritonclient: metadata inputs differ")
    for binary in (True, False):
        via = f"tritonclient HTTP ({'binary' if binary else 'JSON'} tensors)"
        inputs = []
        for input_name, (datatype, array) in columns.items():
            tensor = triton.InferInput(input_name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
        requested = [triton.InferRequestedOutput(o, binary_data=binary) for o in outputs]
        result = client.infer(name, inputs, outputs=requested, request_id=f"req-{binary}")
        check(result.get_response()["id"] == f"req-{binary}", f"{name} via {via}: the request id is not echoed")
        compare(name, via, expected, result.as_numpy("predict"),
                result.as_numpy("predict_proba") if classes else None)
        ids = [i.decode() if isinstance(i, bytes) else i for i in result.as_numpy("prediction_id")]
        model.answered(via, ids)
    # No outputs named: tritonclient asks for all of them in binary form.
    result = client.infer(name, inputs)
    compare(name, "tritonclient HTTP (default outputs)", expected, result.as_numpy("predict"),
            result.as_numpy("predict_proba") if classes else None)
    model.answered("tritonclient HTTP (default outputs)", [i.decode() for i in result.as_numpy("prediction_id")])
    # A refusal: the protocol's error, saying what and where.
    bad = triton.InferInput("no_such_feature", [1], "FP64")
    bad.set_data_from_numpy(np.array([1.0]), binary_data=False)
    try:
        client.infer(name, [bad])
        fail(f"{name}: tritonclient: an unknown input was accepted")
    except InferenceServerException as error:
        check("no_such_feature" in str(error) and "is not an input" in str(error),
              f"{name}: tritonclient: the refusal says {error}")
    try:
        client.infer("no-such-model", inputs)
        fail(f"{name}: tritonclient: an unknown model answered")
    except InferenceServerException as error:
        check("not served" in str(error), f"{name}: tritonclient: unknown model: {error}")
    client.close()

    # gRPC: tritonclient (raw_input_contents, numpy), then the kserve SDK (typed contents, lists).
    client = triton_grpc.InferenceServerClient(url=grpc_address)
    check(client.is_server_live() and client.is_server_ready() and client.is_model_ready(name),
          f"{name}: tritonclient gRPC: not live and ready")
    grpc_metadata = client.get_model_metadata(name, as_json=True)
    check([i["name"] for i in grpc_metadata["inputs"]] == [i["name"] for i in metadata["inputs"]]
          and grpc_metadata["versions"] == metadata["versions"], f"{name}: tritonclient gRPC: metadata differs: {grpc_metadata}")
    inputs = []
    for input_name, (datatype, array) in columns.items():
        tensor = triton_grpc.InferInput(input_name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    result = client.infer(name, inputs, outputs=[triton_grpc.InferRequestedOutput(o) for o in outputs],
                          request_id="grpc-1")
    check(result.get_response().id == "grpc-1", f"{name}: tritonclient gRPC: the request id is not echoed")
    compare(name, "tritonclient gRPC", expected, result.as_numpy("predict"),
            result.as_numpy("predict_proba") if classes else None)
    model.answered("tritonclient gRPC",
                 [i.decode() for i in result.as_numpy("prediction_id")])
    try:
        client.infer(name, inputs[:1])
        fail(f"{name}: tritonclient gRPC: an instance without its required features was accepted")
    except InferenceServerException as error:
        check(error.status() == "StatusCode.INVALID_ARGUMENT" and "is missing" in error.message(),
              f"{name}: tritonclient gRPC: missing features: {error}")
    try:
        client.infer("no-such-model", inputs)
        fail(f"{name}: tritonclient gRPC: an unknown model answered")
    except InferenceServerException as error:
        check(error.status() == "StatusCode.NOT_FOUND", f"{name}: tritonclient gRPC: unknown model: {error}")
    client.close()


async def kserve_suite(model):
    import httpx
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
    name, base, instances, classes, expected, columns = (model.name, model.base, model.instances, model.classes,
                                                         model.expected, model.columns)
    grpc_address = model.grpc_address
    # The kserve SDK's REST client, protocol v2 (JSON tensors) and v1 (the /predict body).
    v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
    check(await v2.is_server_ready(base) and await v2.is_server_live(base), f"{name}: kserve v2: not ready")
    check(await v2.is_model_ready(base, name), f"{name}: kserve v2: model not ready")
    kserve_inputs = []
    for input_name, (datatype, array) in columns.items():
        data = [v.decode() for v in array] if datatype == "BYTES" else array.tolist()
        kserve_inputs.append(InferInput(name=input_name, shape=list(array.shape), datatype=datatype, data=data))
    response = await v2.infer(base, InferRequest(model_name=name, infer_inputs=kserve_inputs, request_id="kserve-1"),
                              model_name=name)
    by_name = {output.name: output for output in response.outputs}
    compare(name, "kserve v2 REST", expected, by_name["predict"].as_numpy(),
            by_name["predict_proba"].as_numpy() if classes else None)
    model.answered("kserve v2 REST", [str(i) for i in by_name["prediction_id"].as_numpy()])
    try:
        await v2.infer(base, InferRequest(model_name=name, infer_inputs=kserve_inputs[:1]), model_name=name)
        fail(f"{name}: kserve v2: an instance without its required features was accepted")
    except httpx.HTTPStatusError as error:
        check(error.response.status_code == 400 and "is missing" in error.response.json()["error"],
              f"{name}: kserve v2: missing features: {error}")
    await v2.close()

    v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
    check(await v1.is_server_live(base), f"{name}: kserve v1: not live")
    check(await v1.is_model_ready(base, name), f"{name}: kserve v1: model not ready")
    answer = await v1.infer(base, {"instances": instances}, model_name=name)
    check(expected_from_predict(answer, classes) == expected, f"{name}: kserve v1: predictions differ from /predict's")
    model.answered("kserve v1", [p["id"] for p in answer["predictions"]])
    await v1.close()

    kserve_grpc = InferenceGRPCClient(grpc_address)
    check(await kserve_grpc.is_server_ready() and await kserve_grpc.is_model_ready(name),
          f"{name}: kserve gRPC: not ready")
    kserve_inputs = []
    for input_name, (datatype, array) in columns.items():
        data = [v.decode() for v in array] if datatype == "BYTES" else array.tolist()
        kserve_inputs.append(InferInput(name=input_name, shape=list(array.shape), datatype=datatype, data=data))
    response = await kserve_grpc.infer(InferRequest(model_name=name, infer_inputs=kserve_inputs, request_id="kg-1"))
    by_name = {output.name: output for output in response.outputs}
    compare(name, "kserve gRPC", expected, by_name["predict"].as_numpy(),
            by_name["predict_proba"].as_numpy() if classes else None)
    model.answered("kserve gRPC",
                 [i.decode() if isinstance(i, bytes) else str(i) for i in by_name["prediction_id"].as_numpy()])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", choices=["triton", "kserve"], required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("models", nargs="+", help="NAME=BASE_URL,GRPC_HOST:PORT")
    arguments = parser.parse_args()
    for spec in arguments.models:
        name, addresses = spec.split("=", 1)
        base, grpc_address = addresses.split(",", 1)
        before = int(psql(arguments.database_url, "select count(*) from prediction")[0][0])
        model = Model(name, base, grpc_address, arguments.csv, arguments.database_url, arguments.count)
        if arguments.suite == "triton":
            triton_suite(model)
            clients = "tritonclient (HTTP with binary and JSON tensors, gRPC)"
        else:
            asyncio.run(kserve_suite(model))
            clients = "the kserve SDK (REST v2 and v1, gRPC)"
        after = int(psql(arguments.database_url, "select count(*) from prediction")[0][0])
        check(after - before == len(model.instances) + model.stored,
              f"{name}: {after - before} rows stored for {len(model.instances)} instances through /predict and "
              f"{model.stored} answered through {clients}")
        print(f"oip-clients: {name}: {len(model.instances)} instances through {clients}: equal to /predict's to the "
              f"bit, each stored once")


if __name__ == "__main__":
    main()
