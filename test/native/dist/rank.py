# The Python twin of rank.mjs, on Debian's torch: the same collectives in the same order, the same JSON line.
import datetime
import json
import os

import torch
import torch.distributed as dist

timeout = datetime.timedelta(milliseconds=int(os.environ.get("TRT_FLOWERS_DIST_TIMEOUT_MS", "20000")))
dist.init_process_group("gloo", init_method="env://", timeout=timeout)
r = dist.get_rank()
n = dist.get_world_size()
s = torch.tensor([r + 1.0, 10.0 * (r + 1)])
dist.all_reduce(s)
avg = torch.tensor([r + 1.0])
dist.all_reduce(avg)
avg /= n
mx = torch.tensor([r + 1.0])
dist.all_reduce(mx, op=dist.ReduceOp.MAX)
b = torch.tensor([100.0 * r, -float(r)])
dist.broadcast(b, n - 1)
dist.barrier()
dist.destroy_process_group()
print(json.dumps({"rank": r, "sum": s.tolist(), "avg": avg.tolist(), "max": mx.tolist(), "bcast": b.tolist()}))
