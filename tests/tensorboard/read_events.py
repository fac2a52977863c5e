"""Test oracle run with the `tensorboard` PyPI package (the virtual environment tools/setup.sh
creates): reads every event file of a directory with TensorBoard's own readers.

usage: read_events.py DIR
prints
  records N                  the records whose length and data CRCs tensorboard's
                             masked_crc32c confirms (it exits 1 on the first that fails)
  raw TAG STEP VALUE         every scalar value of every file, as EventFileLoader yields them
                             (no de-duplication: a step written twice shows twice)
  scalar TAG STEP VALUE WALL what EventAccumulator returns (all of them kept), by tag and step
"""
import glob
import os
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow


def check_records(path):
    with open(path, "rb") as f:
        data = f.read()
    p, n = 0, 0
    while p < len(data):
        header = data[p:p + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[p + 8:p + 12])
        body = data[p + 12:p + 12 + length]
        (body_crc,) = struct.unpack("<I", data[p + 12 + length:p + 16 + length])
        if pywrap_tensorflow.masked_crc32c(header) != header_crc:
            sys.exit("FAIL: %s: length CRC at byte %d" % (path, p))
        if pywrap_tensorflow.masked_crc32c(body) != body_crc:
            sys.exit("FAIL: %s: data CRC at byte %d" % (path, p))
        p += 16 + length
        n += 1
    return n


def main():
    directory = sys.argv[1]
    files = sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*")))
    print("records %d" % sum(check_records(f) for f in files))
    for path in files:
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                # The loader turns simple_value into a scalar tensor (data_compat).
                v = value.tensor.float_val[0] if value.HasField("tensor") else value.simple_value
                print("raw %s %d %r" % (value.tag, event.step, v))
    acc = event_accumulator.EventAccumulator(directory, size_guidance={"scalars": 0})
    acc.Reload()
    for tag in sorted(acc.Tags()["scalars"]):
        for e in acc.Scalars(tag):
            print("scalar %s %d %r %r" % (tag, e.step, e.value, e.wall_time))


if __name__ == "__main__":
    main()
