"""Reads config.pbtxt files back with Debian's python3-protobuf text_format, against the message definitions generated
by grpc_tools from the project's proto/model_config.proto, and runs the repository's preprocessing model on photos.
Prints one JSON object; the test that runs it checks it.

    python3 triton_readback.py STUBS_DIR REPO_MODEL_PY OUT_DIR CONFIG... -- IMAGE...
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402
from google.protobuf import json_format, text_format  # noqa: E402

import model_config_pb2 as pb  # noqa: E402

model_py, out_dir = sys.argv[2], sys.argv[3]
rest = sys.argv[4:]
split = rest.index("--")
configs, images = rest[:split], rest[split + 1 :]

result = {"configs": {}, "preprocess": []}
for path in configs:
    message = text_format.Parse(open(path).read(), pb.ModelConfig())
    result["configs"][path] = json_format.MessageToDict(message, preserving_proto_field_name=True)

spec = importlib.util.spec_from_file_location("triton_preprocess", model_py)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
params = json.loads(result["configs"][configs[0]]["parameters"]["preprocessing"]["string_value"])
for i, image in enumerate(images):
    chw = module.preprocess(open(image, "rb").read(), params)
    file = f"{out_dir}/pre{i}.f32"
    chw.astype("<f4").tofile(file)
    result["preprocess"].append({"file": file, "shape": list(chw.shape), "dtype": str(chw.dtype)})
print(json.dumps(result))
