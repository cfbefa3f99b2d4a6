"""The forward pass alone, TensorFlow (the engine's frozen functions) against PyTorch, same threads.

Score-CAM is one forward pass per masked input and gradient methods at batch 16 are one forward plus a
partial backward, so each side's plain forward pass bounds the ratios ``methods_speed.py`` reports: if
ours and PyTorch's forward passes cost the same, no engine can be 5× faster at Score-CAM. This measures
that floor, per input:

* MobileNetV2 (the offline ImageNet one; torch: torchvision's with the same checkpoint) at batch 16, 32 and
  64 (pytorch-grad-cam's Score-CAM runs batches of 64 here), ResNet50 (seeded random weights on both sides)
  at batch 16 and 1;
* ours: ``Explainer.score_function`` (the frozen forward Score-CAM uses) and, for ResNet50, the frozen
  network call of Grad-CAM (forward + backward to the layer) and the whole ``explain`` call; PyTorch:
  ``model(x)`` under ``torch.no_grad()`` and, for ResNet50, a forward with a backward to ``layer4``'s output
  (what torchcam does). Both at 2 intra-op threads and 1 inter-op thread (``--tf-inter`` to change
  TensorFlow's), PyTorch with ``OMP_WAIT_POLICY=PASSIVE`` as in ``methods_speed.py``.

The two sides run in turns (``--turns``, each a fresh subprocess), so load from other jobs hits both;
medians per turn, then the median over turns. The last line is one JSON object.

    .venv/bin/python bench/forward_floor.py [--turns 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MOBILENET_BATCHES = (16, 32, 64)
RESNET_BATCHES = (16, 1)


def _median_ms_per_input(call, batch: int, repeats: int) -> float:
    call()
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000.0 / batch, 2)


def _tensorflow(repeats: int, inter: int) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras
    import numpy as np

    from core.cam import Explainer, Target
    from core.model_sources import build_cam_model, mobilenetv2_offline
    from core.model_spec import inspect_model

    rng = np.random.default_rng(0)
    out: dict = {}
    explainer = Explainer(mobilenetv2_offline(), freeze="now")
    score = explainer.score_function()
    for batch in MOBILENET_BATCHES:
        x = rng.standard_normal((batch, 224, 224, 3)).astype(np.float32)
        weights = np.full((batch, 1000), 1e-3, np.float32)
        out[f"mobilenetv2 forward, batch {batch}"] = _median_ms_per_input(lambda: score(x, weights), batch, repeats)
    keras.utils.set_random_seed(0)
    resnet = inspect_model(build_cam_model("resnet50", num_classes=1000, weights=None),
                           name="ResNet50 (random weights)", source="bench", preprocessing="caffe")
    explainer = Explainer(resnet, freeze="now")
    score = explainer.score_function()
    for batch in RESNET_BATCHES:
        x = rng.standard_normal((batch, 224, 224, 3)).astype(np.float32)
        weights = np.full((batch, 1000), 1e-3, np.float32)
        images = rng.integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
        out[f"resnet50 forward, batch {batch}"] = _median_ms_per_input(lambda: score(x, weights), batch, repeats)
        out[f"resnet50 gradcam compiled call, batch {batch}"] = _median_ms_per_input(
            lambda: [t.numpy() for t in explainer.run_preprocessed_batch(images, ("gradcam",), "conv5_block3_out")],
            batch, repeats)
        photos = list(images)
        targets = [Target.of_class(1)] * batch
        out[f"resnet50 gradcam explain, batch {batch}"] = _median_ms_per_input(
            lambda: explainer.explain(photos, ("gradcam",), "conv5_block3_out", targets, batch_size=16),
            batch, repeats)
    return out


def _torch(repeats: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(2)
    torch.set_num_interop_threads(1)
    from tests.reference.torch_reference import load_model  # declares torchvision's op schemas first

    import torchvision

    rng = np.random.default_rng(0)
    out: dict = {}
    model = load_model().eval()
    for batch in MOBILENET_BATCHES:
        x = torch.from_numpy(rng.standard_normal((batch, 3, 224, 224)).astype(np.float32))
        with torch.no_grad():
            out[f"mobilenetv2 forward, batch {batch}"] = _median_ms_per_input(lambda: model(x), batch, repeats)
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    captured = {}
    model.layer4.register_forward_hook(lambda module, args, output: captured.__setitem__("a", output))

    def forward_backward(x):
        logits = model(x)
        torch.autograd.grad(logits[:, 1].sum(), captured["a"])

    for batch in RESNET_BATCHES:
        x = torch.from_numpy(rng.standard_normal((batch, 3, 224, 224)).astype(np.float32))
        with torch.no_grad():
            out[f"resnet50 forward, batch {batch}"] = _median_ms_per_input(lambda: model(x), batch, repeats)
        out[f"resnet50 forward + backward to layer4, batch {batch}"] = _median_ms_per_input(
            lambda: forward_backward(x), batch, repeats)
    return out


def _side(name: str, repeats: int, inter: int) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(PROJECT_ROOT))
    command = [sys.executable, __file__, "--side", name, "--repeats", str(repeats), "--tf-inter", str(inter)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tf-inter", type=int, default=1, help="TensorFlow inter-op threads (PyTorch: 1)")
    parser.add_argument("--side", choices=("tensorflow", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        sys.path.insert(0, str(PROJECT_ROOT))
        result = _tensorflow(args.repeats, args.tf_inter) if args.side == "tensorflow" else _torch(args.repeats)
        print(json.dumps(result))
        return 0
    turns: dict[str, list[dict]] = {"tensorflow": [], "torch": []}
    loads = [round(os.getloadavg()[0], 2)]
    for turn in range(args.turns):
        for side in turns:
            turns[side].append(_side(side, args.repeats, args.tf_inter))
            print(f"turn {turn + 1}/{args.turns}: {side} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr,
                  flush=True)
        loads.append(round(os.getloadavg()[0], 2))
    medians = {side: {key: round(statistics.median(t[key] for t in runs), 2) for key in runs[0]}
               for side, runs in turns.items()}
    tf_ms, torch_ms = medians["tensorflow"], medians["torch"]
    print(f"\n## Forward pass alone, ms per input (median of {args.turns} turns × {args.repeats} calls; "
          f"2 intra-op threads each, TensorFlow {args.tf_inter} inter-op, PyTorch 1; load {loads})\n")
    print("| what | TensorFlow (ours) | PyTorch | PyTorch / ours |")
    print("|---|---:|---:|---:|")
    ratios = {}
    for key, value in tf_ms.items():
        theirs = torch_ms.get(key)
        if theirs is None and "resnet50 gradcam" in key:
            theirs = torch_ms.get(key.replace(key.split(",")[0], "resnet50 forward + backward to layer4"))
        ratio = None if theirs is None else round(theirs / value, 2)
        ratios[key] = ratio
        print(f"| {key} | {value:.2f} | {'–' if theirs is None else f'{theirs:.2f}'} | "
              f"{'–' if ratio is None else f'{ratio:.2f}×'} |")
    for key, value in torch_ms.items():
        if "backward" in key:
            print(f"| {key} (torch only) | – | {value:.2f} | – |")
    print(json.dumps({"ms_per_input": medians, "torch_over_ours": ratios, "turns": turns, "load_average": loads,
                      "tf_inter_op_threads": args.tf_inter}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
