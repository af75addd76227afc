#!/usr/bin/env python3
"""Writes a scripted (not traced) TorchScript classifier that returns (logits, embedding).

Architectures:
  tiny          a small CNN for tests and smoke runs (random init)
  mobilenet_v2  torchvision's MobileNetV2; --weights loads any torchvision-keyed .safetensors file

The module's forward takes a float32 NCHW batch (ImageNet-normalised RGB) and returns
(logits [N, num_classes], embedding [N, D]). Prints one JSON line describing what was written.
"""
import argparse
import json
import os
import struct
import sys
import tempfile

import torch
from torch import nn


def read_safetensors(path):
    """Reads a .safetensors file (8-byte header size, JSON header, raw little-endian data) into a dict."""
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
              "I32": torch.int32, "F64": torch.float64, "U8": torch.uint8, "I8": torch.int8}
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: not a safetensors file (bad header size)")
    header = json.loads(raw[8:8 + n])
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = dtypes.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: unsupported dtype {info['dtype']} for {name}")
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


class Classifier(nn.Module):
    """features -> global average pool -> embedding (optional projection) -> logits."""

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int, embedding_size: int, dropout: float):
        super().__init__()
        self.features = features
        self.project = nn.Linear(feature_dim, embedding_size) if embedding_size > 0 else nn.Identity()
        dim = embedding_size if embedding_size > 0 else feature_dim
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        f = torch.flatten(nn.functional.adaptive_avg_pool2d(f, 1), 1)
        embedding = self.project(f)
        logits = self.classifier(self.dropout(embedding))
        return logits, embedding


def tiny_features():
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64)), 64


def mobilenet_v2_features(weights):
    import torchvision
    net = torchvision.models.mobilenet_v2(weights=None)
    if weights:
        state = read_safetensors(weights)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{weights}: not a torchvision MobileNetV2 state dict "
                             f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)")
    return net, 1280


def build(args):
    torch.manual_seed(args.seed)
    if args.arch == "tiny":
        features, dim = tiny_features()
        return Classifier(features, dim, args.num_classes, args.embedding_size, args.dropout)
    if args.arch == "mobilenet_v2":
        net, dim = mobilenet_v2_features(args.weights)
        model = Classifier(net.features, dim, args.num_classes, args.embedding_size, args.dropout)
        return model
    raise ValueError(f"unknown architecture {args.arch}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, choices=["tiny", "mobilenet_v2"])
    p.add_argument("--weights", help="torchvision-keyed .safetensors file with pretrained weights")
    p.add_argument("--num-classes", type=int, default=5)
    p.add_argument("--embedding-size", type=int, default=0, help="projection size; 0 keeps the pooled features")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.num_classes < 2:
        p.error("--num-classes must be at least 2")
    if args.weights and not os.path.isfile(args.weights):
        p.error(f"--weights: file not found: {args.weights}")

    model = build(args).eval()
    scripted = torch.jit.script(model)
    with torch.no_grad():
        logits, emb = scripted(torch.zeros(1, 3, 64, 64))
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".backbone-", suffix=".pt")
    os.close(fd)
    try:
        scripted.save(tmp)
        os.replace(tmp, args.out)
    except BaseException:
        os.unlink(tmp)
        raise
    print(json.dumps({"out": args.out, "arch": args.arch, "num_classes": args.num_classes,
                      "embedding_size": int(emb.shape[1]), "parameters": sum(p.numel() for p in model.parameters()),
                      "pretrained": bool(args.weights), "torch": torch.__version__}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
