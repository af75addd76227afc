"""The preprocessing model of a Triton repository written by `trt-flowers export-triton`: Triton's Python backend
runs it as `<name>_preprocess` (the first step of the `<name>_ensemble` ensemble). It takes a BYTES tensor of encoded
images ([N, 1]) and gives the classifier's FP32 input ([N, 3, size, size]), preprocessed as the model's metadata
says (the config's `preprocessing` parameter: size, resize 'fill' or 'center-crop', kernel, mean, std), with PIL
and numpy.

Outside Triton, `preprocess(bytes, params)` is the same preprocessing on one image.
"""

import io
import json

import numpy as np
from PIL import Image, ImageOps

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # outside Triton: preprocess() alone
    pb_utils = None

# libvips' kernel names (the model's metadata) -> PIL's antialiased filters.
KERNELS = {
    "nearest": Image.NEAREST,
    "linear": Image.BILINEAR,
    "cubic": Image.BICUBIC,
    "mitchell": Image.BICUBIC,
    "lanczos2": Image.LANCZOS,
    "lanczos3": Image.LANCZOS,
}


def preprocess(data, params):
    """One encoded image -> float32 CHW, normalised."""
    size = int(params["size"])
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(bytes(data)))).convert("RGB")
    kernel = KERNELS.get(params.get("kernel", "linear"), Image.BILINEAR)
    if params.get("resize", "fill") == "center-crop":
        scale = size / min(image.width, image.height)
        w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((w, h), kernel)
        left, top = (w - size) // 2, (h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    else:
        image = image.resize((size, size), kernel)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(params["mean"], dtype=np.float32)) / np.asarray(params["std"], dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.params = json.loads(config["parameters"]["preprocessing"]["string_value"])
        self.output = config["output"][0]["name"]

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "image").as_numpy().reshape(-1)
            try:
                batch = np.stack([preprocess(image, self.params) for image in images])
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, batch)]))
            except Exception as err:  # one unusable image fails its request, not the batch
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"not a usable image: {err}")))
        return responses
