#!/usr/bin/env python3
"""Exports a TorchScript classifier (logits, embedding) to ONNX.

The graph has one input `input` (float32 NCHW) and two outputs `logits` [N, C] and `embedding` [N, D], with a
dynamic batch axis unless --static-batch N is given. --metadata is a JSON object written into metadata_props: its
whole text under `trt_flowers`, and each top-level key on its own (strings as they are, anything else as JSON).
The ONNX checker runs on the result; the file is written atomically (temporary file, then rename).

Prints one JSON line describing what was written; exit code 2 with "error: ..." on stderr on bad input.
"""
import argparse
import json
import os
import sys
import tempfile
import warnings


def max_opset():
    from torch.onnx import _constants

    for name in ("ONNX_MAX_OPSET", "onnx_main_opset"):
        if hasattr(_constants, name):
            return int(getattr(_constants, name))
    return 13


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="TorchScript model (.pt) returning (logits, embedding)")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=0, help="ONNX opset; 0: the highest this torch supports")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--static-batch", type=int, default=0, help="fixed batch size; 0: dynamic batch axis")
    p.add_argument("--metadata", default="{}", help="JSON object for metadata_props")
    args = p.parse_args()

    import onnx
    import torch

    highest = max_opset()
    opset = args.opset or highest
    if opset < 13 or opset > highest:
        p.error(f"--opset must be between 13 and {highest} (the highest torch {torch.__version__} exports), "
                f"received {opset}")
    if not os.path.isfile(args.checkpoint):
        p.error(f"--checkpoint: file not found: {args.checkpoint}")
    if args.static_batch < 0:
        p.error("--static-batch must be 0 (dynamic) or a batch size")
    if not 8 <= args.image_size <= 4096:
        p.error(f"--image-size must be between 8 and 4096, received {args.image_size}")
    try:
        metadata = json.loads(args.metadata)
    except json.JSONDecodeError as e:
        p.error(f"--metadata is not JSON: {e}")
    if not isinstance(metadata, dict):
        p.error("--metadata must be a JSON object")

    try:
        model = torch.jit.load(args.checkpoint, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any load failure is a bad checkpoint
        raise ValueError(f"cannot load TorchScript model {args.checkpoint}: {str(e).splitlines()[0]}")
    model.eval()
    batch = args.static_batch or 2
    dummy = torch.zeros(batch, 3, args.image_size, args.image_size)
    with torch.no_grad():
        out = model(dummy)
    if isinstance(out, torch.Tensor):
        outputs = ["logits"]
    elif isinstance(out, (tuple, list)) and len(out) == 2:
        outputs = ["logits", "embedding"]
    else:
        raise ValueError("the model must return logits or (logits, embedding)")

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".export-", suffix=".onnx")
    os.close(fd)
    try:
        dynamic = None if args.static_batch else {name: {0: "batch"} for name in ["input"] + outputs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), tmp, input_names=["input"], output_names=outputs,
                              dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)
        proto = onnx.load(tmp)
        del proto.metadata_props[:]
        entries = {"trt_flowers": json.dumps(metadata, sort_keys=True)}
        for key, value in metadata.items():
            entries[key] = value if isinstance(value, str) else json.dumps(value)
        for key, value in entries.items():
            prop = proto.metadata_props.add()
            prop.key = key
            prop.value = value
        proto.producer_name = "trt-flowers"
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(json.dumps({"out": args.out, "opset": opset, "max_opset": highest, "torch": torch.__version__,
                      "onnx": onnx.__version__, "outputs": outputs, "dynamic_batch": not args.static_batch,
                      "static_batch": args.static_batch or None, "image_size": args.image_size,
                      "bytes": os.path.getsize(args.out), "checker": "passed"}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
