"""Test oracle run with Debian's python3-torch: reads a model file the C++ side exported
(torch.load with weights_only=True, the official {'model': state_dict} layout) and writes
fixtures the C++ side loads.

usage: pytorch_fixture.py EXPORTED OUT_DIR
  OUT_DIR/official.pth  {'model': OrderedDict(name -> 2 * v + 1), 'epoch': 3}  (torch.save zip)
  OUT_DIR/bare.pth      OrderedDict(name -> 2 * v + 1)                          (a bare state dict)
  OUT_DIR/summary.txt   "name shape" per tensor of EXPORTED, sorted
"""
import collections
import sys

import torch


def main():
    exported, out_dir = sys.argv[1], sys.argv[2]
    ckpt = torch.load(exported, map_location="cpu", weights_only=True)
    state = ckpt["model"]
    with open(out_dir + "/summary.txt", "w") as f:
        for name in sorted(state):
            f.write("%s %s\n" % (name, "x".join(str(d) for d in state[name].shape)))
    changed = collections.OrderedDict((k, v * 2 + 1) for k, v in state.items())
    torch.save({"model": changed, "epoch": 3}, out_dir + "/official.pth")
    torch.save(changed, out_dir + "/bare.pth")


if __name__ == "__main__":
    main()
