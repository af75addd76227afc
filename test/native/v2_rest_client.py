"""An Open Inference Protocol (KServe V2) REST client written from the protocol's specification, with Python's
standard library only (urllib, json, struct). It drives a server and prints what it received as one JSON object;
the test that runs it checks the answers.

    python3 v2_rest_client.py URL MODEL TENSOR_FILE SIZE IMAGE...

TENSOR_FILE holds the images' preprocessed float32 NCHW values (little-endian), SIZE the model's input size.
"""

import base64
import json
import struct
import sys
import urllib.error
import urllib.request

url, model, tensor_file, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
images = [open(p, "rb").read() for p in sys.argv[5:]]
n = len(images)


def call(method, path, body=None, headers=None):
    """(status, headers, body bytes) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get(path):
    status, _, body = call("GET", path)
    return {"status": status, "body": json.loads(body) if body else None}


def post_json(path, request):
    status, headers, body = call(
        "POST", path, json.dumps(request).encode(), {"Content-Type": "application/json"}
    )
    return status, headers, body


def infer_json(request, path=None):
    status, headers, body = post_json(path or f"/v2/models/{model}/infer", request)
    return {"status": status, "type": headers.get("Content-Type"), "body": json.loads(body)}


def bytes_element(data):
    """One element of a BYTES tensor in binary form: a 4-byte little-endian length, then the bytes."""
    return struct.pack("<I", len(data)) + data


def decode_binary_outputs(header, binary):
    """The outputs of a binary-data response, decoded by datatype in the order of the JSON header."""
    at = 0
    for out in header["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        raw = binary[at : at + size]
        at += size
        if out["datatype"] == "FP32":
            out["data"] = list(struct.unpack(f"<{size // 4}f", raw))
        elif out["datatype"] == "BYTES":
            items, k = [], 0
            while k < len(raw):
                (length,) = struct.unpack_from("<I", raw, k)
                items.append(raw[k + 4 : k + 4 + length].decode())
                k += 4 + length
            out["data"] = items
    assert at == len(binary), f"{len(binary) - at} binary bytes left over"
    return header


def infer_binary(request, blobs):
    """The binary-data extension: the JSON header, then the binary tensors, the header's length in a header."""
    header = json.dumps(request).encode()
    body = header + b"".join(blobs)
    status, headers, data = call(
        "POST",
        f"/v2/models/{model}/infer",
        body,
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    result = {"status": status, "type": headers.get("Content-Type")}
    length = headers.get("Inference-Header-Content-Length")
    if status == 200 and length is not None:
        result["header_length"] = int(length)
        result["body"] = decode_binary_outputs(json.loads(data[: int(length)]), data[int(length) :])
    else:
        result["body"] = json.loads(data)
    return result


raw_tensor = open(tensor_file, "rb").read()
floats = list(struct.unpack(f"<{len(raw_tensor) // 4}f", raw_tensor))
shape = [n, 3, size, size]
b64 = [base64.b64encode(i).decode() for i in images]

out = {
    "server": get("/v2"),
    "live": get("/v2/health/live"),
    "ready": get("/v2/health/ready"),
    "metadata": get(f"/v2/models/{model}"),
    "metadata_v1": get(f"/v2/models/{model}/versions/1"),
    "model_ready": get(f"/v2/models/{model}/ready"),
    "model_ready_v1": get(f"/v2/models/{model}/versions/1/ready"),
    "config": get(f"/v2/models/{model}/config"),
    # FP32, preprocessed, in JSON: flat, and nested as the specification also allows.
    "fp32_json": infer_json(
        {"id": "fp32-1", "inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": floats}]}
    ),
    "fp32_json_nested": infer_json(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": shape,
                    "datatype": "FP32",
                    "data": [
                        [[floats[(i * 3 + c) * size * size + y * size : (i * 3 + c) * size * size + (y + 1) * size] for y in range(size)] for c in range(3)]
                        for i in range(n)
                    ],
                }
            ],
            "outputs": [{"name": "probabilities"}],
        },
        f"/v2/models/{model}/versions/1/infer",
    ),
    "fp32_binary": infer_binary(
        {
            "inputs": [
                {"name": "input", "shape": shape, "datatype": "FP32", "parameters": {"binary_data_size": len(raw_tensor)}}
            ],
            "outputs": [
                {"name": "probabilities", "parameters": {"binary_data": True}},
                {"name": "label", "parameters": {"binary_data": True}},
            ],
        },
        [raw_tensor],
    ),
    # BYTES: the encoded JPEG files, base64 in JSON, raw in binary form.
    "bytes_json": infer_json({"inputs": [{"name": "image", "shape": [n], "datatype": "BYTES", "data": b64}]}),
    "bytes_binary": infer_binary(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [n, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": sum(4 + len(i) for i in images)},
                }
            ],
            "parameters": {"binary_data_output": True},
        },
        [b"".join(bytes_element(i) for i in images)],
    ),
    # Output selection: the label only; the top-2 classes (classification extension); the embedding in binary.
    "select_label": infer_json(
        {"inputs": [{"name": "image", "shape": [n], "datatype": "BYTES", "data": b64}], "outputs": [{"name": "label"}]}
    ),
    "select_top2": infer_json(
        {
            "inputs": [{"name": "image", "shape": [n], "datatype": "BYTES", "data": b64}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}, {"name": "logits"}],
        }
    ),
    "select_embedding_binary": infer_binary(
        {
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 4 + len(images[0])}}],
            "outputs": [{"name": "embedding", "parameters": {"binary_data": True}}],
        },
        [bytes_element(images[0])],
    ),
    # Errors.
    "err_unknown_model": infer_json(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": b64[:1]}]},
        "/v2/models/no_such_model/infer",
    ),
    "err_unknown_model_metadata": get("/v2/models/no_such_model"),
    "err_unknown_version": get(f"/v2/models/{model}/versions/7"),
    "err_shape": infer_json({"inputs": [{"name": "input", "shape": [1, 3, size, size + 1], "datatype": "FP32", "data": [0.0] * (3 * size * (size + 1))}]}),
    "err_count": infer_json({"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": floats[:-1]}]}),
    "err_datatype": infer_json({"inputs": [{"name": "input", "shape": [1], "datatype": "INT64", "data": [1]}]}),
    "err_input_name": infer_json({"inputs": [{"name": "pixels", "shape": [1], "datatype": "BYTES", "data": b64[:1]}]}),
    "err_output_name": infer_json(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": b64[:1]}], "outputs": [{"name": "scores"}]}
    ),
    "err_not_image": infer_json(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(b"hello").decode()]}]}
    ),
    "err_too_many": infer_json({"inputs": [{"name": "image", "shape": [11], "datatype": "BYTES", "data": b64[:1] * 11}]}),
    "err_binary_size": infer_binary(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 10 ** 6}}]},
        [bytes_element(images[0])],
    ),
    "err_bad_json": (lambda r: {"status": r[0], "body": json.loads(r[2])})(
        call("POST", f"/v2/models/{model}/infer", b"{not json", {"Content-Type": "application/json"})
    ),
}
print(json.dumps(out))
