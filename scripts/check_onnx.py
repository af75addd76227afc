#!/usr/bin/env python3
"""Runs the ONNX checker (full check, with shape inference) on a model file; prints a JSON line."""
import json
import sys

import onnx


def main():
    if len(sys.argv) != 2:
        print("usage: check_onnx.py MODEL.onnx", file=sys.stderr)
        sys.exit(2)
    path = sys.argv[1]
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        print(f"error: the ONNX checker rejects {path}: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)
    ops = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    print(json.dumps({"checker": "passed", "opset": opset, "ir_version": model.ir_version, "ops": ops}))


if __name__ == "__main__":
    main()
