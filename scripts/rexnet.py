"""ReXNet (Han et al., "Rethinking Channel Dimensions for Efficient Model Design", CVPR 2021), the project's own
definition, written to be scriptable with torch.jit.script (torch 1.13) and keyed like timm's `rexnet_*` models
(stem.conv/bn, features.N.conv_exp/conv_dw/se/conv_pwl, features.16 the final 1x1 conv, head.fc), so a timm
state dict converted to .safetensors loads with strict key checks.

Structure (RexNetV1, as in the paper and timm):
  - stem: 3x3 stride-2 conv to round(32 * width) channels, BatchNorm, SiLU (Swish);
  - 16 LinearBottleneck blocks over 6 stages (1, 2, 2, 3, 3, 5 blocks; strides 1, 2, 2, 2, 1, 2), output channels
    growing linearly from 16 * width by 180 * width over the blocks (each block an "expand" layer);
    expansion 1 in the first block, 6 after; squeeze-excitation (ratio 1/12, with BatchNorm) from stage 3 on;
    1x1 expansion conv + BN + SiLU, 3x3 depthwise conv + BN, SE, ReLU6, 1x1 linear projection + BN;
    "partial residual": when stride is 1 and channels do not shrink, the input is added to the first in_channels
    output channels and the rest are concatenated unchanged;
  - final 1x1 conv to 1280 * width channels + BN + SiLU (1920 for rexnet_150);
  - head: global average pool, dropout, Linear(1920, classes).

rexnet_150 with a 1000-class head has 9,728,593 parameters (timm lists 9.73M).
"""
import math
from typing import List, Optional, Tuple

import torch
from torch import nn


def make_divisible(v: float, divisor: int = 1, min_value: Optional[int] = None, round_limit: float = 0.9) -> int:
    """timm's rounding of channel counts (divisor 1 rounds half up)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class ConvNormAct(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + optional activation; keys conv.*, bn.* like timm's ConvNormAct."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 act: Optional[nn.Module] = None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act if act is not None else nn.Identity()
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SEWithNorm(nn.Module):
    """Squeeze-excitation with a BatchNorm between the two 1x1 convs (ReXNet's variant)."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=True)
        self.bn = nn.BatchNorm2d(reduced)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(self.act(self.bn(self.fc1(s))))
        return x * self.gate(s)


class LinearBottleneck(nn.Module):
    """Inverted residual block with partial (channel-concat) residual."""

    def __init__(self, cin: int, cout: int, stride: int, exp_ratio: float, se_ratio: float, ch_div: int = 1):
        super().__init__()
        self.use_shortcut = stride == 1 and cin <= cout
        self.in_channels = cin
        self.out_channels = cout
        if exp_ratio != 1.0:
            dw = make_divisible(round(cin * exp_ratio), divisor=ch_div)
            self.conv_exp = ConvNormAct(cin, dw, act=nn.SiLU(inplace=True))
        else:
            dw = cin
            self.conv_exp = nn.Identity()
        self.conv_dw = ConvNormAct(dw, dw, 3, stride=stride, groups=dw)
        self.se = SEWithNorm(dw, make_divisible(int(dw * se_ratio), ch_div)) if se_ratio > 0 else nn.Identity()
        self.act_dw = nn.ReLU6()
        self.conv_pwl = ConvNormAct(dw, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_exp(x)
        x = self.conv_dw(x)
        x = self.se(x)
        x = self.act_dw(x)
        x = self.conv_pwl(x)
        if self.use_shortcut:
            x = torch.cat([x[:, 0:self.in_channels] + shortcut, x[:, self.in_channels:]], dim=1)
        return x


def block_config(width_mult: float, depth_mult: float = 1.0, initial_chs: int = 16, final_chs: int = 180,
                 se_ratio: float = 1 / 12.0, ch_div: int = 1) -> List[Tuple[int, float, int, float]]:
    """(out_channels, expansion, stride, se_ratio) per block, as in timm's _block_cfg."""
    layers = [math.ceil(n * depth_mult) for n in [1, 2, 2, 3, 3, 5]]
    stage_strides = [1, 2, 2, 2, 1, 2]
    strides: List[int] = []
    for n, s in zip(layers, stage_strides):
        strides += [s] + [1] * (n - 1)
    blocks = sum(layers)
    exp_ratios = [1.0] * layers[0] + [6.0] * (blocks - layers[0])
    se_ratios = [0.0] * (layers[0] + layers[1]) + [se_ratio] * (blocks - layers[0] - layers[1])
    base = initial_chs / width_mult if width_mult < 1.0 else float(initial_chs)
    out_chs = []
    for _ in range(blocks):
        out_chs.append(make_divisible(round(base * width_mult), divisor=ch_div))
        base += final_chs / blocks
    return list(zip(out_chs, exp_ratios, strides, se_ratios))


class RexNet(nn.Module):
    """ReXNetV1 with timm's module names; `forward_features` gives the [N, 1280*width, h, w] map."""

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000, se_ratio: float = 1 / 12.0,
                 ch_div: int = 1, drop_rate: float = 0.2):
        super().__init__()
        stem_base = 32 / width_mult if width_mult < 1.0 else 32
        stem_chs = make_divisible(round(stem_base * width_mult), divisor=ch_div)
        self.stem = ConvNormAct(3, stem_chs, 3, stride=2, act=nn.SiLU(inplace=True))
        blocks: List[nn.Module] = []
        prev = stem_chs
        for chs, exp, stride, se in block_config(width_mult, se_ratio=se_ratio, ch_div=ch_div):
            blocks.append(LinearBottleneck(prev, chs, stride, exp, se, ch_div))
            prev = chs
        self.num_features = make_divisible(1280 * width_mult, divisor=ch_div)
        blocks.append(ConvNormAct(prev, self.num_features, 1, act=nn.SiLU(inplace=True)))
        self.features = nn.Sequential(*blocks)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class ClassifierHead(nn.Module):
    def __init__(self, dim: int, num_classes: int, drop_rate: float):
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))


class RexNetFeatures(nn.Module):
    """stem + features of a RexNet: the backbone part that Classifier wraps."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.stem = net.stem
        self.features = net.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.stem(x))


def init_weights(model: nn.Module) -> None:
    """EfficientNet-style init (as timm's efficientnet_init_weights): fan-out normal convs, unit BN, uniform fc."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            r = 1.0 / math.sqrt(m.weight.size(0))
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)


def rexnet(width_mult: float, num_classes: int = 1000) -> RexNet:
    return RexNet(width_mult=width_mult, num_classes=num_classes)


def rexnet_150(num_classes: int = 1000) -> RexNet:
    return RexNet(width_mult=1.5, num_classes=num_classes)
