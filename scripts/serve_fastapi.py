#!/usr/bin/env python3
"""The Python serving stack that `trt-flowers serve` replaces, as a baseline for scripts/bench-serve.js.

FastAPI + uvicorn + PyTorch, the usual way: the TorchScript model loaded with torch.jit.load, PIL decoding, a resize
to the model's size (bilinear, as torchvision's Resize on PIL images), ImageNet mean/std, softmax, and the JSON of
`trt-flowers predict` (probabilities high to low, 4 decimals).

  /usr/bin/python3 scripts/serve_fastapi.py --model runs/<id>/checkpoints/best/model.pt --port 8001 \
      --size 128 [--resize fill|center-crop] [--threads 2] [--handler async|threadpool]

Endpoints: POST /predict (multipart/form-data, field `file`), GET /health.

--handler async (default): `async def` endpoint that runs the model inline, one request at a time (the common
pattern; no thread oversubscription). --handler threadpool: a plain `def` endpoint, which FastAPI runs in its thread
pool, several model calls at once. Torch uses --threads intra-op threads and one inter-op thread.
"""
import argparse
import io
import json

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.responses import Response
from PIL import Image, ImageOps

DEFAULT_CLASSES = "daisy,dandelion,roses,sunflowers,tulips"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="TorchScript file (forward returns logits, embedding)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--size", type=int, default=224, help="input height and width")
    p.add_argument("--mean", default="0.485,0.456,0.406")
    p.add_argument("--std", default="0.229,0.224,0.225")
    p.add_argument("--resize", choices=["fill", "center-crop"], default="fill")
    p.add_argument("--classes", default=DEFAULT_CLASSES, help="comma-separated, in the model's order")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--handler", choices=["async", "threadpool"], default="async")
    return p.parse_args()


args = parse_args()
torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
model = torch.jit.load(args.model, map_location="cpu").eval()
classes = args.classes.split(",")
mean = np.array([float(v) for v in args.mean.split(",")], dtype=np.float32)
std = np.array([float(v) for v in args.std.split(",")], dtype=np.float32)
size = args.size
ready = False


def preprocess(data: bytes) -> torch.Tensor:
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    if args.resize == "center-crop":
        w, h = image.size
        scale = size / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    else:
        image = image.resize((size, size), Image.BILINEAR)
    x = (np.asarray(image, dtype=np.float32) / 255.0 - mean) / std
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


def classify(name: str, data: bytes) -> Response:
    try:
        x = preprocess(data)
    except Exception as err:  # PIL raises many kinds for bad input
        raise HTTPException(status_code=400, detail=f"{name} is not a usable image: {err}")
    with torch.inference_mode():
        logits, _ = model(x)
        probs = torch.softmax(logits[0].double(), dim=0).tolist()
    best = max(range(len(probs)), key=lambda k: probs[k])
    ranked = sorted(zip(classes, probs), key=lambda kv: -kv[1])
    record = {
        "image_path": name,
        "predicted_class": classes[best],
        "confidence": round(probs[best], 4),
        "all_probabilities": {k: round(v, 4) for k, v in ranked},
    }
    return Response(json.dumps(record), media_type="application/json")


app = FastAPI(title="flower classifier (FastAPI + PyTorch baseline)")

if args.handler == "async":

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)):
        return classify(file.filename, await file.read())

else:

    @app.post("/predict")
    def predict(file: UploadFile = File(...)):
        return classify(file.filename, file.file.read())


@app.get("/health")
def health():
    return {"status": "ok" if ready else "loading", "ready": ready}


# One warm-up inference before the port opens (the first calls are several times slower).
with torch.inference_mode():
    model(torch.zeros(1, 3, size, size))
ready = True

if __name__ == "__main__":
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
