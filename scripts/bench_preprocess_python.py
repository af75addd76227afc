#!/usr/bin/env python3
"""The original project's preprocessing in Python, timed: the baseline of `npm run bench:preprocess`.

Image.open(path).convert("RGB") -> torchvision Resize((size, size)) -> ToTensor -> Normalize(ImageNet mean/std), one
image after the other in each process, over the file list given on stdin (one path per line). For each process
count: one warm-up pass, then `--runs` timed passes; prints one JSON line with images/s (median, min, max) and CPU-ms
per image (the CPU time of the workers themselves, median), per process count.

    python3 scripts/bench_preprocess_python.py --size 224 --runs 5 --processes 1,2 < files.txt
"""
import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_transform = None


def _init(size):
    global _transform
    import torch
    from torchvision import transforms as T

    torch.set_num_threads(1)
    _transform = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(MEAN, STD)])


def _chunk(paths):
    from PIL import Image

    cpu = time.process_time()
    for p in paths:
        with Image.open(p) as im:
            _transform(im.convert("RGB"))
    return time.process_time() - cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--processes", default="1,2")
    a = ap.parse_args()
    files = [line.strip() for line in sys.stdin if line.strip()]
    if not files:
        raise SystemExit("no files on stdin")
    import PIL
    import torchvision

    out = {"impl": "python-pil", "pillow": PIL.__version__, "torchvision": torchvision.__version__,
           "images": len(files), "size": a.size, "runs": []}
    for n in [int(x) for x in a.processes.split(",")]:
        # Contiguous shares, one per process, so every process reads its files once per pass.
        shares = [files[i * len(files) // n:(i + 1) * len(files) // n] for i in range(n)]
        with mp.get_context("fork").Pool(n, initializer=_init, initargs=(a.size,)) as pool:
            pool.map(_chunk, shares)  # warm-up: imports, file cache
            rates, cpu = [], []
            for _ in range(a.runs):
                t = time.perf_counter()
                used = pool.map(_chunk, shares)
                rates.append(len(files) / (time.perf_counter() - t))
                cpu.append(sum(used) * 1000 / len(files))
        out["runs"].append({"processes": n, "median": statistics.median(rates), "min": min(rates), "max": max(rates),
                            "cpu_ms": statistics.median(cpu)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
