"""Weight formats against the real packages (timm, transformers, safetensors, torch 2.x in the
peer venv): files those packages save load here with the same logits, and what `export` writes
loads there with the same logits.

usage: weights_oracle.py WEIGHTS_TOOL EXPORT WORK_DIR

Every model is float32 at 224 px, randomly initialized and then perturbed (so GRN's
zero-initialized gamma/beta matter), on the same seeded input. Prints one line per check with
the max absolute logit difference and fails above TOL.
"""
import json
import os
import subprocess
import sys

import safetensors.torch
import timm
import torch
import transformers

TOL = 1e-5
VARIANTS = {  # name: (depths, hidden_sizes)
    "convnextv2_atto": ([2, 2, 6, 2], [40, 80, 160, 320]),
    "convnextv2_femto": ([2, 2, 6, 2], [48, 96, 192, 384]),
}
failures = []


def report(what, ours, theirs):
    diff = (ours - theirs).abs().max().item()
    scale = theirs.abs().max().item()
    ok = diff <= TOL and scale > 0.1  # logits of a real size, not all near zero
    print("%-62s max |diff| %.3g  (max |logit| %.3g)%s" % (what, diff, scale, "" if ok else "  FAIL"))
    if not ok:
        failures.append(what)


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("FAIL: %s exited with %d:\n%s" % (" ".join(map(str, args)), r.returncode, r.stderr))
    return r.stdout


def our_logits(tool, weights, work, model=""):
    out = os.path.join(work, "ours.safetensors")
    names = run(tool, "logits", weights, os.path.join(work, "x.safetensors"), out, *([model] if model else []))
    return safetensors.torch.load_file(out)["logits"], names.split("\n")[:-1]


def into_ours(tool, work, x):
    """timm and transformers files, loaded here."""
    for i, (name, (depths, dims)) in enumerate(VARIANTS.items()):
        n = 5 + i
        m = perturb(timm.create_model(name, pretrained=False, num_classes=n), 10 + i)
        with torch.no_grad():
            ref = m(x)
        sd = m.state_dict()
        st, pth = os.path.join(work, name + ".safetensors"), os.path.join(work, name + ".bin")
        safetensors.torch.save_file(sd, st)
        torch.save(sd, pth)
        for f in (st, pth):
            report("timm %s -> here (%s)" % (name, os.path.basename(f)), our_logits(tool, f, work)[0], ref)
        labels = {i: "class_%d" % i for i in range(n)}
        cfg = transformers.ConvNextV2Config(depths=depths, hidden_sizes=dims, num_labels=n,
                                            id2label=labels, label2id={v: k for k, v in labels.items()})
        hf = perturb(transformers.ConvNextV2ForImageClassification(cfg), 20 + i)
        with torch.no_grad():
            ref = hf(pixel_values=x).logits
        folder, bin_folder = os.path.join(work, name + "_hf"), os.path.join(work, name + "_hf_bin")
        hf.save_pretrained(folder)
        os.makedirs(bin_folder)
        with open(os.path.join(folder, "config.json")) as src, open(os.path.join(bin_folder, "config.json"), "w") as dst:
            dst.write(src.read())
        torch.save(hf.state_dict(), os.path.join(bin_folder, "pytorch_model.bin"))
        for f in (folder, bin_folder):
            ours, names = our_logits(tool, f, work)
            report("transformers %s -> here (%s)" % (name, os.path.basename(f)), ours, ref)
            if names != [labels[k] for k in range(n)]:
                failures.append("id2label of %s: got %s" % (f, names))
        # timm's FCMAE encoder-only weights (convnextv2_*.fcmae): no head, for fine-tuning.
        enc = {k: v for k, v in sd.items() if not k.startswith("head.")}
        fcmae = os.path.join(work, name + "_fcmae.safetensors")
        safetensors.torch.save_file(enc, fcmae)
        log = run(tool, "init", fcmae, name, 3)
        if "in the timm FCMAE encoder layout" not in log or "not initialized from pretrained model: head.bias, head.weight, norm.bias, norm.weight" not in log:
            failures.append("fcmae init log: " + log)
        print("timm %s.fcmae encoder -> --finetune init: layout and missing keys as expected" % name)


def out_of_ours(tool, export, work, x):
    """What `export` writes, loaded by timm and transformers."""
    for i, name in enumerate(VARIANTS):
        n = 4 + i
        classes = ["c%d_%s" % (k, name[-4:]) for k in range(n)]
        ckpt = os.path.join(work, name + "_ours.pth")
        run(tool, "make-checkpoint", name, n, ckpt, *classes)
        ours, names = our_logits(tool, ckpt, work)
        if names != classes:
            failures.append("class names of %s: %s" % (ckpt, names))
        for fmt in ("safetensors", "pth"):
            out = os.path.join(work, "export_%s.%s" % (name, fmt))
            run(export, "--resume", ckpt, "--format", fmt, "--out", out)
            m = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=out, num_classes=n)).eval()
            with torch.no_grad():
                report("here %s -> export %s -> timm" % (name, fmt), ours, m(x))
        out = os.path.join(work, name + "_export_hf")
        run(export, "--resume", ckpt, "--format", "hf", "--out", out)
        hf = transformers.ConvNextV2ForImageClassification.from_pretrained(out, use_kernels=False).eval()
        with torch.no_grad():
            report("here %s -> export hf -> transformers" % name, ours, hf(pixel_values=x).logits)
        if [hf.config.id2label[k] for k in range(n)] != classes:
            failures.append("id2label of %s: %s" % (out, hf.config.id2label))


def main():
    tool, export, work = sys.argv[1:4]
    print("torch %s, timm %s, transformers %s" % (torch.__version__, timm.__version__, transformers.__version__))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    safetensors.torch.save_file({"x": x}, os.path.join(work, "x.safetensors"))
    into_ours(tool, work, x)
    out_of_ours(tool, export, work, x)
    if failures:
        sys.exit("FAIL:\n  " + "\n  ".join(failures))
    print("PASS")


if __name__ == "__main__":
    main()
