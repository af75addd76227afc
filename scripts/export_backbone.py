#!/usr/bin/env python3
"""Writes a scripted (not traced) TorchScript classifier that returns (logits, embedding).

Architectures:
  tiny          a small CNN for tests and smoke runs (random init)
  mobilenet_v2  MobileNetV2-1.0 as the ImageNet weights were trained: torchvision's quantizable float model
                (ReLU, not ReLU6; same keys as torchvision.models.mobilenet_v2). --weights loads any
                torchvision-keyed .safetensors file (the shared ImageNet one included)
  rexnet_150    ReXNet-1.5x, the project's own definition (scripts/rexnet.py, timm's key names), random init;
                --weights loads a timm-keyed rexnet_150 .safetensors; --timm builds timm's rexnet_150 with its
                pretrained weights instead (needs the timm package)

The module's forward takes a float32 NCHW batch (ImageNet-normalised RGB) and returns
(logits [N, num_classes], embedding [N, D]). The model is scripted, never traced: BatchNorm and Dropout keep
their train/eval behaviour. It is not passed through optimize_for_inference (wrong outputs on RexNet in 1.13).

--freeze-bn: every BatchNorm2d is replaced by FrozenBatchNorm2d, which normalises with its running statistics
and never updates them, in train mode too (its `frozen` attribute, True; set it to False on each such submodule,
e.g. Module::setattr in C++, to get plain BatchNorm behaviour back after the first epochs). Its weight and bias
stay trainable parameters, as for a BatchNorm in eval mode during fine-tuning, and the state-dict keys are those
of BatchNorm2d. This is what the MobileNetV2 ImageNet weights need: their BatchNorms are identities carrying the
conv bias, and batch statistics would replace them on the first training step.

ImageNet check (--verify-imagenet DIR, and by default when the weights file has samples/ and imagenet_words.txt
beside it): before the 1000-class head is replaced, the pretrained model classifies every image in DIR (resize
short side 256, centre-crop 224, ImageNet mean/std) and the top-1 class and probability of each is reported in
the JSON line (imagenet_check). Expected classes: DIR/expected.json ({"file": ["class name", ...]}) else the
shared samples' (samoyed -> Samoyed, horse -> horse cart, wolf -> Eskimo dog / malamute / timber wolf); any
mismatch is an error. The class names come from imagenet_words.txt in DIR, its parent or beside the weights.
The written model's embedding is also compared with the pretrained pooled features on the same images.

Prints one JSON line describing what was written; exit code 2 with "error: ..." on stderr on bad input.
"""
import argparse
import json
import os
import struct
import sys
import tempfile
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# The shared MobileNetV2 samples (its README): a correct load reproduces these top-1 classes.
DEFAULT_EXPECTED = {"samoyed": ["Samoyed"], "horse": ["horse cart"],
                    "wolf": ["Eskimo dog", "malamute", "timber wolf"]}


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
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a safetensors file (bad JSON header: {e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a safetensors file (header is not an object)")
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError(f"{path}: truncated or corrupt safetensors file ({name} lies at bytes {begin}-{end} "
                             f"of a {len(data)}-byte data section)")
        dtype = dtypes.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: unsupported dtype {info['dtype']} for {name}")
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        numel = 1
        for d in info["shape"]:
            numel *= d
        if t.numel() != numel:
            raise ValueError(f"{path}: {name} has {t.numel()} values for shape {info['shape']}")
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_checked(module: nn.Module, state, path: str, what: str) -> None:
    """load_state_dict with one clear error naming what is missing, unexpected or of the wrong shape."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {list(state[k].shape)} (model {list(own[k].shape)})" for k in own
              if k in state and state[k].shape != own[k].shape and not state[k].numel() == own[k].numel() == 1]
    if missing or unexpected or shapes:
        def some(keys):
            return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        parts = [f"{len(own) - len(missing) - len(shapes)} of {len(own)} tensors match"]
        if missing:
            parts.append(f"missing {len(missing)} ({some(missing)})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({some(unexpected)})")
        if shapes:
            parts.append(f"wrong shape {len(shapes)} ({some(shapes)})")
        raise ValueError(f"{path}: not a {what} state dict: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def split_head(state, prefix: str):
    """Takes the `prefix`weight/bias tensors (a classification head) out of a state dict."""
    head = {k[len(prefix):]: state.pop(k) for k in list(state) if k.startswith(prefix)}
    return head or None


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d that uses and keeps its running statistics in train mode too while `frozen` is True (scriptable:
    a plain attribute read in forward, no train() override). weight/bias stay trainable; keys match BatchNorm2d."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        if not bn.affine or not bn.track_running_stats:
            raise ValueError("FrozenBatchNorm2d needs an affine BatchNorm2d with running statistics")
        self.num_features = bn.num_features
        self.eps = bn.eps
        self.momentum = bn.momentum if bn.momentum is not None else 0.1
        self.frozen = True
        self.weight = bn.weight
        self.bias = bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training and not self.frozen, self.momentum, self.eps)


def freeze_batchnorm(module: nn.Module) -> int:
    """Replaces every BatchNorm2d below `module` by a FrozenBatchNorm2d; returns how many."""
    n = 0
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child))
            n += 1
        else:
            n += freeze_batchnorm(child)
    return n


class Classifier(nn.Module):
    """features -> global average pool -> embedding (optional projection) -> logits."""

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int, embedding_size: int, dropout: float):
        super().__init__()
        self.features = features
        self.project = nn.Linear(feature_dim, embedding_size) if embedding_size > 0 else nn.Identity()
        dim = embedding_size if embedding_size > 0 else feature_dim
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)

    @torch.jit.export
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's globally pooled features [N, feature_dim] (what the head takes)."""
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)

    @torch.jit.export
    def head(self, f: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pooled features -> (logits, embedding): the trainable head alone, for training on cached features."""
        embedding = self.project(f)
        logits = self.classifier(self.dropout(embedding))
        return logits, embedding

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.pooled(x))


class Backbone(NamedTuple):
    features: nn.Module
    dim: int
    # The pretrained classification head on the pooled features (for the ImageNet check), when there is one.
    imagenet_head: Optional[nn.Module]
    source: str


def tiny_features():
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64)), 64


def head_from(head_state, dim: int, path: str) -> Optional[nn.Module]:
    if head_state is None:
        return None
    w = head_state.get("weight")
    if w is None or w.dim() != 2 or w.shape[1] != dim or "bias" not in head_state:
        raise ValueError(f"{path}: the classification head does not fit {dim} features")
    head = nn.Linear(dim, w.shape[0])
    head.load_state_dict(head_state)
    return head


def mobilenet_v2_backbone(weights) -> Backbone:
    import torchvision
    try:
        # The float architecture the ImageNet weights were trained with (ReLU); same keys as mobilenet_v2().
        net = torchvision.models.quantization.mobilenet_v2(weights=None, quantize=False)
        source = "torchvision.models.quantization.mobilenet_v2(quantize=False) (ReLU)"
    except (AttributeError, TypeError):
        net = torchvision.models.mobilenet_v2(weights=None)
        for m in net.modules():
            for name, child in m.named_children():
                if isinstance(child, nn.ReLU6):
                    setattr(m, name, nn.ReLU(inplace=True))
        source = "torchvision.models.mobilenet_v2 with ReLU6 -> ReLU"
    head = None
    if weights:
        state = read_safetensors(weights)
        head_state = split_head(state, "classifier.1.")
        holder = nn.Module()  # checks the file's own key names (features.*) against the model's
        holder.features = net.features
        load_checked(holder, state, weights, "torchvision MobileNetV2 (features.*, classifier.1.*)")
        head = head_from(head_state, 1280, weights)
    return Backbone(net.features, 1280, head, source)


def rexnet_150_backbone(weights, use_timm: bool) -> Backbone:
    from rexnet import RexNetFeatures, rexnet_150
    if use_timm:
        try:
            import timm
        except ImportError as e:
            raise ValueError(f"--timm needs the timm package, which {sys.executable} cannot import ({e}); install it "
                             f"(pip install timm) or drop --timm to use the project's own rexnet_150") from None
        kwargs = {"pretrained_cfg_overlay": {"file": weights}} if weights else {}
        try:
            net = timm.create_model("rexnet_150", pretrained=True, scriptable=True, exportable=True, **kwargs)
        except Exception as e:  # download or file errors come in many types
            raise ValueError(f"timm could not create rexnet_150 with pretrained weights: {e}") from None
        return Backbone(RexNetFeatures(net), int(net.num_features), net.get_classifier(),
                        f"timm {timm.__version__} rexnet_150 (pretrained)")
    net = rexnet_150(1000)
    features = RexNetFeatures(net)
    head = None
    if weights:
        state = read_safetensors(weights)
        head = head_from(split_head(state, "head.fc."), net.num_features, weights)
        load_checked(features, state, weights, "timm-keyed rexnet_150 (stem.*, features.*)")
    return Backbone(features, net.num_features, head, "scripts/rexnet.py rexnet_150")


def build_backbone(args) -> Backbone:
    if args.arch == "tiny":
        features, dim = tiny_features()
        return Backbone(features, dim, None, "tiny")
    if args.arch == "mobilenet_v2":
        return mobilenet_v2_backbone(args.weights)
    if args.arch == "rexnet_150":
        return rexnet_150_backbone(args.weights, args.timm)
    raise ValueError(f"unknown architecture {args.arch}")


def find_words(sample_dir: str, weights) -> str:
    candidates = [os.path.join(sample_dir, "imagenet_words.txt"),
                  os.path.join(os.path.dirname(os.path.abspath(sample_dir)), "imagenet_words.txt")]
    if weights:
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(weights)), "imagenet_words.txt"))
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise ValueError(f"--verify-imagenet: no imagenet_words.txt in {', '.join(candidates)}")


def expected_classes(sample_dir: str, images: List[str]):
    path = os.path.join(sample_dir, "expected.json")
    if os.path.isfile(path):
        with open(path) as f:
            table = json.load(f)
        return {img: table.get(img) for img in images}
    return {img: DEFAULT_EXPECTED.get(os.path.splitext(img)[0].lower()) for img in images}


def imagenet_inputs(sample_dir: str):
    from PIL import Image
    from torchvision import transforms as T
    if not os.path.isdir(sample_dir):
        raise ValueError(f"--verify-imagenet: not a directory: {sample_dir}")
    images = sorted(f for f in os.listdir(sample_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not images:
        raise ValueError(f"--verify-imagenet: no images ({', '.join(IMAGE_EXTENSIONS)}) in {sample_dir}")
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    batch = []
    for img in images:
        with Image.open(os.path.join(sample_dir, img)) as im:
            batch.append(tf(im.convert("RGB")))
    return images, torch.stack(batch)


def imagenet_check(backbone: Backbone, sample_dir: str, weights):
    """Classifies the samples with the pretrained head; returns (report rows, inputs, pooled features)."""
    if backbone.imagenet_head is None:
        raise ValueError("--verify-imagenet needs pretrained weights that include the ImageNet classifier "
                         "(mobilenet_v2 --weights FILE, rexnet_150 --timm or --weights with head.fc)")
    words_path = find_words(sample_dir, weights)
    with open(words_path) as f:
        words = [line.strip() for line in f if line.strip()]
    images, x = imagenet_inputs(sample_dir)
    backbone.features.eval()
    backbone.imagenet_head.eval()
    with torch.no_grad():
        pooled = torch.flatten(F.adaptive_avg_pool2d(backbone.features(x), 1), 1)
        probs = backbone.imagenet_head(pooled).softmax(1)
    if probs.shape[1] != len(words):
        raise ValueError(f"{words_path} has {len(words)} class names for a {probs.shape[1]}-class head")
    expected = expected_classes(sample_dir, images)
    rows, failures = [], []
    for i, img in enumerate(images):
        p, k = probs[i].max(0)
        top1 = words[int(k)].split(",")[0].strip()
        exp = expected.get(img)
        ok = None if exp is None else top1 in exp
        rows.append({"image": img, "top1": top1, "prob": round(float(p), 4), "class_index": int(k),
                     "expected": exp, "ok": ok})
        if ok is False:
            failures.append(f"{img}: top-1 {top1} ({float(p):.3f}), expected {' / '.join(exp)}")
    if failures:
        raise ValueError("ImageNet check failed, the weights did not load as trained: " + "; ".join(failures))
    if all(r["ok"] is None for r in rows):
        raise ValueError(f"--verify-imagenet: no image in {sample_dir} has an expected class "
                         f"(name them like the shared samples or add expected.json)")
    return rows, x, pooled


def default_sample_dir(args):
    """The samples beside the weights file (the shared MobileNetV2 layout), when present."""
    if not args.weights:
        return None
    base = os.path.dirname(os.path.abspath(args.weights))
    samples = os.path.join(base, "samples")
    if os.path.isdir(samples) and os.path.isfile(os.path.join(base, "imagenet_words.txt")):
        return samples
    return None


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, choices=["tiny", "mobilenet_v2", "rexnet_150"])
    p.add_argument("--weights", help="pretrained .safetensors: torchvision keys (mobilenet_v2) or timm keys "
                                     "(rexnet_150; with --timm, a file timm can read)")
    p.add_argument("--timm", action="store_true", help="rexnet_150 from timm with its pretrained weights")
    p.add_argument("--num-classes", type=int, default=5)
    p.add_argument("--embedding-size", type=int, default=0, help="projection size; 0 keeps the pooled features")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout before the classifier, in [0, 1)")
    p.add_argument("--freeze-bn", action="store_true",
                   help="BatchNorms use their running statistics in train mode too (FrozenBatchNorm2d, see above)")
    p.add_argument("--verify-imagenet", metavar="DIR",
                   help="check the pretrained ImageNet head on the images in DIR before replacing it")
    p.add_argument("--skip-imagenet-check", action="store_true",
                   help="do not run the ImageNet check automatically on the samples beside the weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.num_classes < 2:
        p.error("--num-classes must be at least 2")
    if args.embedding_size < 0:
        p.error("--embedding-size must be 0 or more")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), received {args.dropout}")
    if args.weights and not os.path.isfile(args.weights):
        p.error(f"--weights: file not found: {args.weights}")
    if args.timm and args.arch != "rexnet_150":
        p.error(f"--timm is for --arch rexnet_150, received --arch {args.arch}")
    if args.arch == "tiny" and args.weights:
        p.error("--weights is not supported for --arch tiny")
    if args.verify_imagenet and not os.path.isdir(args.verify_imagenet):
        p.error(f"--verify-imagenet: not a directory: {args.verify_imagenet}")

    torch.manual_seed(args.seed)
    backbone = build_backbone(args)
    sample_dir = args.verify_imagenet or (None if args.skip_imagenet_check else default_sample_dir(args))
    check = imagenet_check(backbone, sample_dir, args.weights) if sample_dir else None

    model = Classifier(backbone.features, backbone.dim, args.num_classes, args.embedding_size, args.dropout)
    frozen = freeze_batchnorm(model) if args.freeze_bn else 0
    model.eval()
    scripted = torch.jit.script(model)
    with torch.no_grad():
        logits, emb = scripted(torch.zeros(1, 3, 64, 64))
    result = {"out": args.out, "arch": args.arch, "num_classes": args.num_classes,
              "embedding_size": int(emb.shape[1]), "parameters": count(model),
              "pretrained": bool(args.weights) or args.timm, "torch": torch.__version__,
              "parameters_imagenet_head": count(backbone.features) + backbone.dim * 1000 + 1000,
              "source": backbone.source, "freeze_bn": args.freeze_bn, "frozen_batchnorms": frozen,
              "dropout": args.dropout}
    if check is not None:
        rows, x, pooled = check
        result["imagenet_check"] = rows
        if args.embedding_size == 0:
            # The written module must carry the weights that passed the check.
            with torch.no_grad():
                diff = float((scripted(x)[1] - pooled).abs().max())
            if diff > 1e-4 * max(1.0, float(pooled.abs().max())):
                raise ValueError(f"the scripted model's embedding differs from the checked features by {diff}")
            result["imagenet_embedding_max_diff"] = diff

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".backbone-", suffix=".pt")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; the model is an ordinary file
        scripted.save(tmp)
        os.replace(tmp, args.out)
    except BaseException:
        os.unlink(tmp)
        raise
    print(json.dumps(result))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        main()
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
