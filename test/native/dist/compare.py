# Prints the largest absolute difference between the parameters and buffers of two TorchScript files, as JSON.
import json
import sys

import torch

a = torch.jit.load(sys.argv[1]).state_dict()
b = torch.jit.load(sys.argv[2]).state_dict()
assert a.keys() == b.keys()
diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
print(json.dumps({"maxAbsDiff": diff, "tensors": len(a)}))
