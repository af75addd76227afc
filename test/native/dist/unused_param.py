# Writes a TorchScript model that wraps another and adds a trainable parameter its forward never uses (the first in
# parameter order, so it lands in the last gradient bucket), and prints the first parameter's name and the size.
import json
import sys

import torch
from torch import nn


class WithUnused(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.unused = nn.Parameter(torch.ones(256))

    def forward(self, x: torch.Tensor):
        return self.inner(x)


model = torch.jit.script(WithUnused(torch.jit.load(sys.argv[1])))
names = [n for n, _ in model.named_parameters()]
model.save(sys.argv[2])
print(json.dumps({"first": names[0], "parameters": sum(p.numel() for p in model.parameters())}))
