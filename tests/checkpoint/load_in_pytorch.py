"""Test oracle run with Debian's python3-torch: opens the checkpoints a `finetune` run wrote
with torch.load(..., weights_only=True), loads their weights into the official ConvNeXt V2
architecture (tools/bench/official_convnextv2.py) and evaluates them on the run's test set,
which must give the accuracy and loss the run logged.

usage:
  load_in_pytorch.py make-data SOURCE_DIR OUT_DIR N_TRAIN N_TEST
      writes the first N_TRAIN / N_TEST images of the IDX dataset in SOURCE_DIR (Fashion-MNIST)
      to OUT_DIR as uncompressed IDX files
  load_in_pytorch.py check RUN_DIR DATA_DIR EPOCH
      checks RUN_DIR/checkpoint-EPOCH.pth and RUN_DIR/checkpoint-best.pth against row EPOCH of
      RUN_DIR/log.txt
  load_in_pytorch.py flip FILE OUT
      writes FILE with one bit flipped inside its largest zip record's data
"""
import gzip
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

# tools/bench/official_convnextv2.py, found from the source tree and from Bazel runfiles alike.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                                "bench"))
import official_convnextv2  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_data(source, out, n_train, n_test):
    os.makedirs(out, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            array = read_idx(os.path.join(source, "%s-%s.gz" % (split, kind)))
            write_idx(os.path.join(out, "%s-%s" % (split, kind)), array[:n])


def test_batch(data_dir):
    """The evaluation transform of 28x28 IDX images at input_size 32: centered on a zero
    32x32 canvas, repeated to 3 channels, normalized with the ImageNet mean and std."""
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = F.pad(x, (2, 2, 2, 2)).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels.astype(np.int64))


def evaluate(state, variant, num_classes, x, y):
    model = official_convnextv2.create(variant, num_classes)
    model.load_state_dict(state, strict=True)  # every official key, nothing else
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(b) for b in x.split(64)])
    acc1 = (logits.argmax(1) == y).double().mean().item() * 100
    loss = F.cross_entropy(logits.double(), y).item()
    return acc1, loss


def check(run_dir, data_dir, epoch):
    with open(os.path.join(run_dir, "log.txt")) as f:
        row = json.loads(f.read().splitlines()[epoch])
    x, y = test_batch(data_dir)
    path = os.path.join(run_dir, "checkpoint-%d.pth" % epoch)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "optimizer", "epoch", "rng", "convnextv2"):
        if key not in ckpt:
            fail("%s lacks '%s' (has %s)" % (path, key, sorted(ckpt)))
    info = ckpt["convnextv2"]
    if ckpt["epoch"] != epoch or info["kind"] != "training" or info["next_epoch"] != epoch + 1:
        fail("%s: epoch %r, kind %r, next_epoch %r" % (path, ckpt["epoch"], info["kind"],
                                                         info["next_epoch"]))
    if info["format_version"] != 2 or "optim" not in info["config_text"]:
        fail("%s: header %r" % (path, {k: v for k, v in info.items() if k != "config_text"}))
    head = ckpt["model"]["head.weight"]
    if ckpt["optimizer"]["head.weight.exp_avg"].shape != head.shape:
        fail("%s: optimizer state of head.weight has shape %r" % (
            path, tuple(ckpt["optimizer"]["head.weight.exp_avg"].shape)))
    if abs(info["best_acc1"].item() - row["test_acc1"]) > 1e-9:
        fail("%s: best_acc1 %r, log.txt test_acc1 %r" % (path, info["best_acc1"], row["test_acc1"]))
    variant, classes = info["model"], head.shape[0]
    n = len(y)
    for name, state in ((path, ckpt["model"]),
                        (os.path.join(run_dir, "checkpoint-best.pth"), None)):
        if state is None:
            best = torch.load(name, map_location="cpu", weights_only=True)
            if best["convnextv2"]["kind"] != "weights" or best["convnextv2"]["best_of"] != "model":
                fail("%s: %r" % (name, best["convnextv2"]))
            state = best["model"]
        acc1, loss = evaluate(state, variant, classes, x, y)
        print("%s: PyTorch acc1 %.4f loss %.6f; the run logged acc1 %.4f loss %.6f (%d images)"
              % (name, acc1, loss, row["test_acc1"], row["test_loss"], n))
        # At most one image may fall the other way on a near tie of two logits.
        if abs(acc1 - row["test_acc1"]) > 100.0 / n + 1e-9:
            fail("%s: acc1 %.4f in PyTorch, %.4f logged" % (name, acc1, row["test_acc1"]))
        if abs(loss - row["test_loss"]) > 1e-4 * max(1.0, loss):
            fail("%s: loss %.6f in PyTorch, %.6f logged" % (name, loss, row["test_loss"]))


def flip(path, out):
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    at = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26:at + 30])
    start = at + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x04
    with open(out, "wb") as f:
        f.write(data)


def main():
    command = sys.argv[1]
    if command == "make-data":
        make_data(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif command == "check":
        check(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "flip":
        flip(sys.argv[2], sys.argv[3])
    else:
        fail("unknown command " + command)


if __name__ == "__main__":
    main()
