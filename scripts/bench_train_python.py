#!/usr/bin/env python3
"""Times one training step in Python PyTorch: the same step as the native Trainer.step (src/train/Trainer.ts).

One forward over the concatenated [query; positive; negative] batch (3B images), loss = CE(query logits, labels)
+ CosineEmbeddingLoss(q, p, +1) + CosineEmbeddingLoss(q, n, -1) (margin 0), backward, the total gradient norm
(clip_grad_norm_ with an infinite limit, as the native step computes it), AdamW (lr 1e-3, weight decay 0: the
native defaults), and the loss values read back as Python numbers.

Model: --model FILE, a TorchScript file from export_backbone.py, run as TorchScript; with --eager and --arch, the
same architecture is built as plain Python modules (scripts/export_backbone.py's builders) and given the file's
weights, so both run the same numbers. Without --model, --arch builds a fresh eager model (seed --seed).

Inputs: a fixed pattern, x[i] = 1.5 * sin(0.37 * i) over the flat [3B, 3, size, size] batch (scripts/bench-train.js
uses the same one, so the first-step losses can be compared), labels i % classes. On a GPU the batch starts on the
host every step, as it does in training (a DataLoader with pin_memory=True, then .to(device, non_blocking=True)),
and as the native step receives it; --inputs device keeps it on the GPU instead.

Warm-up steps first (the first calls are 2-8x slower), then the median (and p90) over --steps timed steps.
Threads: torch.set_num_threads(--threads) and set_num_interop_threads(1). --device cuda[:N] runs the step on a GPU;
--amp adds fp16 autocast and torch.amp.GradScaler (dynamic loss scaling), as the native trainer does with amp.
Prints one JSON line.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build_eager(args, state=None):
    import export_backbone as eb
    ns = argparse.Namespace(arch=args.arch, weights=None, timm=False)
    torch.manual_seed(args.seed)
    backbone = eb.build_backbone(ns)
    # The projection size follows the model file when one is given (its `project` layer), else none.
    embedding = int(state["project.weight"].shape[0]) if state is not None and "project.weight" in state else 0
    model = eb.Classifier(backbone.features, backbone.dim, args.num_classes, embedding, args.dropout)
    if args.freeze_bn:
        eb.freeze_batchnorm(model)
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model


def pattern(n: int) -> torch.Tensor:
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.37).mul(1.5).float()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="TorchScript file (export_backbone.py output)")
    p.add_argument("--arch", choices=["tiny", "mobilenet_v2", "rexnet_150"], help="architecture for --eager")
    p.add_argument("--eager", action="store_true", help="run as plain Python modules (needs --arch)")
    p.add_argument("--freeze-bn", action="store_true", help="with --eager: the model file was exported with it")
    p.add_argument("--num-classes", type=int, default=5, help="without --model: classes of the head")
    p.add_argument("--dropout", type=float, default=0.2, help="without --model: dropout of the head")
    p.add_argument("--batch", type=int, default=8, help="triplets per step (3x images)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--amp", action="store_true", help="fp16 autocast + dynamic loss scaling (CUDA only)")
    p.add_argument("--inputs", choices=["host", "device"], default="host",
                   help="where the batch is at the start of each step (default host: copied in every step)")
    args = p.parse_args()
    if not args.model and not args.arch:
        p.error("give --model FILE or --arch")
    if args.eager and not args.arch:
        p.error("--eager needs --arch")
    if args.model and not os.path.isfile(args.model):
        p.error(f"--model: file not found: {args.model}")
    for name in ("batch", "size", "steps", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")

    if args.device != "cpu" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: this PyTorch ({torch.__version__}) sees no CUDA device")
    device = torch.device(args.device)
    if args.amp and device.type != "cuda":
        p.error("--amp needs --device cuda")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    if args.model and not args.eager:
        model = torch.jit.load(args.model)
        kind = "torchscript"
    elif args.model:
        model = build_eager(args, torch.jit.load(args.model).state_dict())
        kind = "eager"
    else:
        model = build_eager(args)
        kind = "eager"
    model.to(device)
    b, s = args.batch, args.size
    host = pattern(3 * b * 3 * s * s).reshape(3 * b, 3, s, s)
    if device.type == "cuda" and args.inputs == "host":
        host = host.pin_memory()
    resident = host.to(device) if args.inputs == "device" else None
    model.eval()
    with torch.no_grad():
        classes = int(model(host[:2].to(device))[0].shape[1])
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    labels = (torch.arange(b) % classes).to(device)
    ones = torch.ones(b, device=device)
    scaler = None
    if args.amp:  # torch.amp.GradScaler("cuda") from PyTorch 2.3, torch.cuda.amp.GradScaler before
        scaler = (torch.amp.GradScaler("cuda", init_scale=65536.0) if hasattr(torch.amp, "GradScaler")
                  else torch.cuda.amp.GradScaler(init_scale=65536.0))

    def step():
        images = resident if resident is not None else host.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=args.amp):
            logits, emb = model(images)
            q_logits = logits[:b]
            q, pos, neg = emb.float().split(b)
            ce = F.cross_entropy(q_logits.float(), labels)
            lp = F.cosine_embedding_loss(q, pos, ones, margin=0.0)
            ln = F.cosine_embedding_loss(q, neg, -ones, margin=0.0)
            loss = ce + lp + ln
        vals = [loss.item(), ce.item(), lp.item(), ln.item(), int(q_logits.argmax(1).eq(labels).sum())]
        opt.zero_grad()
        if scaler is None:
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, math.inf))
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, math.inf))
            scaler.step(opt)
            scaler.update()
        return vals[0], grad_norm

    losses, times = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss, _ = step()
        dt = time.perf_counter() - t0
        losses.append(loss)
        if i >= args.warmup:
            times.append(dt * 1000)
    median = statistics.median(times)
    ordered = sorted(times)
    print(json.dumps({
        "impl": f"python-{kind}", "model": args.model, "arch": args.arch, "batch_triplets": b,
        "images_per_step": 3 * b, "size": s, "threads": torch.get_num_threads(), "warmup": args.warmup,
        "steps": args.steps, "median_step_ms": round(median, 1),
        "p90_step_ms": round(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], 1),
        "min_step_ms": round(ordered[0], 1), "images_per_s": round(3 * b / (median / 1000), 2),
        "first_loss": round(losses[0], 5), "last_loss": round(losses[-1], 5), "torch": torch.__version__,
        "device": str(device), "amp": args.amp, "inputs": args.inputs,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }))


if __name__ == "__main__":
    main()
