#!/usr/bin/env python3
"""Times a trt-flowers classifier in Python PyTorch eager with PIL preprocessing: the reference for `trt-flowers bench`.

Model: --model FILE, a TorchScript classifier (export_backbone.py output or a training checkpoint). Its weights are
loaded into the same architecture built as plain Python modules with scripts/export_backbone.py's builders (as
scripts/bench_train_python.py --eager does), so the numbers are eager PyTorch, not TorchScript. The architecture is
--arch, else the `arch` of the file's own metadata (extra file trt_flowers.json), else the one whose state dict
matches. The model runs in eval mode under torch.inference_mode().

Preprocessing (PIL, the usual torchvision pipeline): Image.open(path).convert("RGB"), torchvision Resize to
size x size (--resize fill; center-crop: shorter side to size, then CenterCrop), ToTensor, Normalize(mean, std),
torch.stack. One image after the other, in this one process.

Per batch size (--batch 1,16,32) and mode:
  model  a fixed preprocessed batch (the first photos of --images) -> model(x) -> (logits, embedding)
  e2e    image files (the next `batch` photos of --images, cycling) -> preprocessing -> model -> softmax -> list
Method (trtexec's, as the Node bench): warm-up by time (--warmup-ms), then at least --iterations timed calls and
at least --duration-s of timed wall clock; every call timed with time.perf_counter().

--eval-list FILE (JSON [[path, class index], ...]): also classifies those photos (batches of the largest batch size,
at least 16) and returns the predicted class indices. Before timing, the eager model's logits are compared with the
TorchScript file's on up to 4 photos (max |diff| in the output; above 1e-3 is an error).
Threads: torch.set_num_threads(--threads), set_num_interop_threads(1). --device cuda[:N] runs the model on a GPU
(preprocessing stays on the CPU, as in the Node bench; every timed call ends with the outputs copied back to the
host, which waits for the GPU). Progress on stderr; one JSON line on stdout with every latency in ms.
"""
import argparse
import json
import os
import platform
import re
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ARCHS = ("tiny", "mobilenet_v2", "rexnet_150")


def log(msg):
    print(f"[python-eager] {msg}", file=sys.stderr, flush=True)


def build_eager(arch, state):
    """The architecture as plain modules with `state` loaded (strict)."""
    import export_backbone as eb
    backbone = eb.build_backbone(argparse.Namespace(arch=arch, weights=None, timm=False))
    embedding = int(state["project.weight"].shape[0]) if "project.weight" in state else 0
    classes = int(state["classifier.weight"].shape[0])
    model = eb.Classifier(backbone.features, backbone.dim, classes, embedding, 0.0)
    # FrozenBatchNorm2d has BatchNorm2d's keys and, in eval mode, its arithmetic: no need to know --freeze-bn.
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model(path, arch):
    extra = {"trt_flowers.json": ""}
    scripted = torch.jit.load(path, map_location="cpu", _extra_files=extra)
    state = {k: v.detach().clone() for k, v in scripted.state_dict().items()}
    metadata = {}
    if extra["trt_flowers.json"]:
        try:
            metadata = json.loads(extra["trt_flowers.json"])
        except ValueError:
            metadata = {}
    candidates = [arch] if arch else ([metadata["arch"]] if metadata.get("arch") in ARCHS else list(ARCHS))
    errors = []
    for a in candidates:
        try:
            return build_eager(a, state), a, metadata, scripted
        except (RuntimeError, KeyError, ValueError) as e:
            errors.append(f"{a}: {str(e).splitlines()[0][:200]}")
    raise ValueError(f"{path}: no architecture matches its weights ({'; '.join(errors)})")


def make_transform(size, mean, std, resize):
    from torchvision import transforms as T
    steps = [T.Resize((size, size))] if resize == "fill" else [T.Resize(size), T.CenterCrop(size)]
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


def load_images(paths, transform):
    from PIL import Image
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(transform(im.convert("RGB")))
    return torch.stack(out)


def machine_cpu_ms():
    """(busy, total) CPU time of the whole machine so far, ms (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return busy * tick_ms, (busy + idle + iowait) * tick_ms


def time_calls(call, warmup_ms, iterations, duration_s):
    i = 0
    start = time.perf_counter()
    while True:
        call(i)
        i += 1
        if (time.perf_counter() - start) * 1000 >= warmup_ms:
            break
    warmup_iterations, warmup_elapsed = i, (time.perf_counter() - start) * 1000
    latencies = []
    # Other processes' share of the CPU during the timed phase (as the Node bench reports it).
    cpu_before, own_before = machine_cpu_ms(), time.process_time()
    t_start = time.perf_counter()
    now = t_start
    while len(latencies) < iterations or now - t_start < duration_s:
        t = time.perf_counter()
        call(i)
        i += 1
        now = time.perf_counter()
        latencies.append((now - t) * 1000)
    cpu_after, own = machine_cpu_ms(), (time.process_time() - own_before) * 1000
    other = None
    if cpu_before and cpu_after and cpu_after[1] > cpu_before[1]:
        busy = cpu_after[0] - cpu_before[0] - own
        other = round(max(0.0, min(100.0, 100 * busy / (cpu_after[1] - cpu_before[1]))), 2)
    return {"warmup_iterations": warmup_iterations, "warmup_ms": round(warmup_elapsed, 3), "other_cpu_percent": other,
            "wall_ms": round((now - t_start) * 1000, 3), "latencies_ms": [round(x, 4) for x in latencies]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="TorchScript classifier (.pt)")
    p.add_argument("--arch", choices=ARCHS, help="architecture (default: the file's metadata, else by its weights)")
    p.add_argument("--images", required=True, help="JSON file: a list of photo paths")
    p.add_argument("--batch", default="1", help="batch sizes, comma-separated")
    p.add_argument("--modes", default="model,e2e", help="model, e2e or both, comma-separated")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--warmup-ms", type=float, default=200)
    p.add_argument("--duration-s", type=float, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--size", type=int, help="input size (default: the file's metadata, else 224)")
    p.add_argument("--mean", default=None, help="three comma-separated numbers (default: metadata, else ImageNet)")
    p.add_argument("--std", default=None, help="three comma-separated numbers (default: metadata, else ImageNet)")
    p.add_argument("--resize", choices=["fill", "center-crop"], default=None)
    p.add_argument("--eval-list", help="JSON file: [[path, class index], ...] to classify")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    args = p.parse_args()
    if not os.path.isfile(args.model):
        p.error(f"--model: file not found: {args.model}")
    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch: integers separated by commas, received {args.batch!r}")
    if not batches or any(b < 1 for b in batches):
        p.error(f"--batch: positive integers, received {args.batch!r}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("model", "e2e") for m in modes):
        p.error(f"--modes: model and/or e2e, received {args.modes!r}")
    if args.iterations < 1 or args.threads < 1 or args.warmup_ms < 0 or args.duration_s < 0:
        p.error("--iterations and --threads must be at least 1, --warmup-ms and --duration-s at least 0")
    with open(args.images) as f:
        photos = json.load(f)
    if not isinstance(photos, list) or not photos:
        p.error(f"--images: {args.images} must hold a non-empty JSON list of paths")

    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        p.error(f"--device: cpu, cuda or cuda:N, received {args.device!r}")
    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"error: --device {args.device}: this PyTorch ({torch.__version__}) sees no CUDA device", file=sys.stderr)
        sys.exit(2)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    try:
        model, arch, metadata, scripted = load_model(args.model, args.arch)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    pre = metadata.get("preprocessing", {}) if isinstance(metadata.get("preprocessing"), dict) else {}
    size = args.size or int(pre.get("size", 224))
    mean = [float(x) for x in args.mean.split(",")] if args.mean else list(pre.get("mean", [0.485, 0.456, 0.406]))
    std = [float(x) for x in args.std.split(",")] if args.std else list(pre.get("std", [0.229, 0.224, 0.225]))
    resize = args.resize or pre.get("resize", "fill")
    transform = make_transform(size, mean, std, resize)
    log(f"{args.model}: eager {arch} on {device}, input {size}x{size} ({resize}), {torch.get_num_threads()} threads, "
        f"{len(photos)} photos")

    results = []
    with torch.inference_mode():
        # The eager model must compute what the TorchScript file computes.
        check = load_images(photos[:4], transform)
        scripted.eval()
        # On the CPU, before the model moves: GPU convolutions (TF32, other algorithms) differ by more than 1e-3.
        diff = float((model(check)[0] - scripted(check)[0]).abs().max())
        del scripted
        log(f"eager vs TorchScript on {len(check)} photos: max |logit diff| {diff:.2e}")
        if diff > 1e-3:
            print(f"error: the eager {arch} model does not reproduce {args.model} (max |logit diff| {diff:.3g})",
                  file=sys.stderr)
            sys.exit(2)
        model.to(device)
        for b in batches:
            fixed = load_images([photos[k % len(photos)] for k in range(b)], transform).to(device)
            for mode in modes:
                if mode == "model":
                    def call(_i, x=fixed):
                        logits, embedding = model(x)
                        logits.cpu(), embedding.cpu()
                else:
                    def call(i, b=b):
                        start = (i * b) % len(photos)
                        paths = [photos[(start + k) % len(photos)] for k in range(b)]
                        logits, _ = model(load_images(paths, transform).to(device))
                        logits.softmax(1).tolist()
                r = time_calls(call, args.warmup_ms, args.iterations, args.duration_s)
                lat = r["latencies_ms"]
                log(f"batch {b} {mode}: {len(lat)} iterations in {r['wall_ms'] / 1000:.1f} s, "
                    f"p50 {statistics.median(lat):.2f} ms")
                results.append({"batch": b, "mode": mode, **r})

        predictions, eval_ms = None, None
        if args.eval_list:
            with open(args.eval_list) as f:
                items = json.load(f)
            step = max(16, max(batches))
            t = time.perf_counter()
            predictions = []
            for k in range(0, len(items), step):
                logits, _ = model(load_images([it[0] for it in items[k:k + step]], transform).to(device))
                predictions.extend(int(c) for c in logits.argmax(1).tolist())
            eval_ms = round((time.perf_counter() - t) * 1000, 1)
            correct = sum(1 for pr, it in zip(predictions, items) if pr == int(it[1]))
            log(f"eval: {correct}/{len(items)} correct in {eval_ms / 1000:.1f} s")

    import PIL
    import torchvision
    print(json.dumps({
        "impl": "python-eager", "model": os.path.abspath(args.model), "arch": arch, "size": size, "resize": resize,
        "threads": torch.get_num_threads(), "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "pillow": PIL.__version__, "python": platform.python_version(), "max_abs_diff_vs_torchscript": diff,
        "results": results,
        "predictions": predictions, "eval_ms": eval_ms,
    }))


if __name__ == "__main__":
    main()
