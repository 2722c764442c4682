#!/usr/bin/env python3
"""The Open Inference Protocol routes of `predict`, driven by clients nobody here wrote (scripts/oip-clients).

    oip_clients.py --csv ROWS.csv --database-url URL NAME=http://HOST:PORT[:TARGET] ...

For each served model (NAME, its base URL, the CSV's label column to leave out), the same instances go
through `/predict` and through NVIDIA's tritonclient (HTTP, JSON and binary tensors) and the kserve SDK's
REST clients (v2 and v1). Every answer must equal `/predict`'s to the last bit, every instance must be stored
once with the input `/predict` stored for it, and refusals must come back as the protocol's errors.
Exits non-zero on the first failure, saying what differed.
"""
import argparse
import asyncio
import csv
import json
import subprocess
import sys
import urllib.request

import httpx
import numpy as np
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


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


async def run_model(name, base, csv_path, database_url, count):
    host = base.split("://", 1)[1]
    metadata = get(f"{base}/v2/models/{name}")
    classes = json.loads(metadata["parameters"]["classes"]) if "parameters" in metadata else None
    instances = instances_from_csv(csv_path, metadata, count)
    reference = post(f"{base}/predict", {"instances": instances})
    expected = expected_from_predict(reference, classes)
    reference_ids = [p["id"] for p in reference["predictions"]]
    columns = tensors(instances, metadata)
    outputs = ["predict", "prediction_id"] + (["predict_proba"] if classes else [])

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
        check_stored(database_url, name, via, ids, reference_ids)
    # No outputs named: tritonclient asks for all of them in binary form.
    result = client.infer(name, inputs)
    compare(name, "tritonclient HTTP (default outputs)", expected, result.as_numpy("predict"),
            result.as_numpy("predict_proba") if classes else None)
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
    check_stored(database_url, name, "kserve v2 REST", [str(i) for i in by_name["prediction_id"].as_numpy()],
                 reference_ids)
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
    check_stored(database_url, name, "kserve v1", [p["id"] for p in answer["predictions"]], reference_ids)
    await v1.close()
    print(f"oip-clients: {name}: {len(instances)} instances through tritonclient (binary, JSON), kserve v2 and v1: "
          f"equal to /predict's to the bit, each stored once")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("models", nargs="+", help="NAME=BASE_URL")
    arguments = parser.parse_args()
    for spec in arguments.models:
        name, base = spec.split("=", 1)
        asyncio.run(run_model(name, base, arguments.csv, arguments.database_url, arguments.count))


if __name__ == "__main__":
    main()
