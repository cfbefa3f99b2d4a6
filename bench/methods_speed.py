"""Every CAM method of the engine against pytorch-grad-cam, torchcam and tf-keras-vis, per photo, on CPU.

Models: the offline ImageNet MobileNetV2 (``mobilenetv2_offline()``; torch side: torchvision's MobileNetV2 with
the same checkpoint) at its last block (Keras ``out_relu``, torch ``features.18``, 7×7×1280), and a ResNet50
with seeded random weights on both sides (speed does not depend on the weights) at ``conv5_block3_out`` /
``layer4[-1]``. The same 16 photos, resized to 224×224 once, go to every contender; the targets are the
MobileNetV2's predicted classes.

* ours: ``Explainer(bundle, freeze="now").explain(photos, methods=(key,), layer=..., target=...)``, each
  one-pass method alone and all of them together, at batch 16 (one call) and one photo per call; plus the
  compiled call alone (``run_preprocessed_batch``) for Grad-CAM; Score-CAM (all channels), Faster-Score-CAM
  (``FAST_SCORECAM_CHANNELS`` channels) and Ablation-CAM on one photo; peak resident memory of Score-CAM at batch 16;
* the PyTorch libraries: ``bench/torch_speed.py`` in a subprocess (torch never loads next to TensorFlow),
  2 intra-op threads, 1 inter-op thread;
* tf-keras-vis 0.8.7 ``Gradcam``, ``GradcamPlusPlus``, ``Layercam`` at batch 16 and ``Scorecam(max_N=FAST_SCORECAM_CHANNELS)``
  one photo per call (at batch 16 it needs > 24 GB) (MobileNetV2 only).

    .venv/bin/python bench/methods_speed.py [--repeats 5] [--quick]

``--quick``: fewer rounds and photos, no Score-CAM (all channels) on either side, no pytorch-grad-cam
Ablation-CAM, no tf-keras-vis Scorecam, no memory run. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# every contender keeps its frozen twin, as MAX_COMPILED keeps its function (the dashboard bounds them)
os.environ.setdefault("CAM_EXPLORER_FROZEN_BUDGET_MB", "none")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# the same threads as the PyTorch side (torch_speed.py): 2 intra-op, 1 inter-op
TF_THREADS = {"intra_op": 2, "inter_op": 1}
tf.config.threading.set_intra_op_parallelism_threads(TF_THREADS["intra_op"])
tf.config.threading.set_inter_op_parallelism_threads(TF_THREADS["inter_op"])

from bench.speed import load_photos, resize_to_input  # noqa: E402
from core.cam import Explainer, RunOptions, Target  # noqa: E402
from core.methods import METHODS, Stopped  # noqa: E402
from core.methods.perturbation import FAST_SCORECAM_CHANNELS  # noqa: E402
from core.model_sources import build_cam_model, mobilenetv2_offline  # noqa: E402
from core.model_spec import inspect_model  # noqa: E402
from core.preprocessing import preprocess  # noqa: E402
from bench.rss import PeakRss  # noqa: E402

BATCH = 16
ONE_PASS = tuple(key for key, m in METHODS.items() if m.one_pass)
GRADIENT = tuple(key for key in ONE_PASS if METHODS[key].needs_gradients and not METHODS[key].needs_cam_head)
# The together-target is about methods at the explained layer: FullGrad's map needs the backward pass all the
# way to the input (about 2× Grad-CAM's whole cost by itself), so it is timed alone and with them, apart.
AT_LAYER = tuple(key for key in ONE_PASS if METHODS[key].kind != "input")
ALL = "all one-pass layer methods together"
WITH_INPUT = "all one-pass methods together, FullGrad too"
# the nine one-pass methods of the first comparison (before FinerCAM and KPCA-CAM joined the registry)
NINE_KEYS = ("cam", "gradcam", "gradcampp", "xgradcam", "hirescam", "gradcam_elementwise", "layercam", "eigencam",
             "eigengradcam")
NINE = "the 9 first one-pass methods together"
LAYERS = {"mobilenetv2": "out_relu", "resnet50": "conv5_block3_out"}
TORCH_SCRIPT = Path(__file__).with_name("torch_speed.py")
TARGETS = {  # what each ratio must reach (per method for the gradient ones)
    "torchcam": 3.0, "pytorch_grad_cam": 8.0, "torchcam_single": 1.5, "pytorch_grad_cam_single": 3.0,
    "all_methods_vs_gradcam": 1.3, "scorecam": 5.0, "ablationcam": 10.0, "fast_scorecam_seconds": 0.5,
}


# -- timing -------------------------------------------------------------------------------------------------
@dataclass
class Timed:
    """One method (or set) of ours: a batch-16 call and a one-photo call, timed in interleaved rounds."""

    name: str
    batch: Callable[[], object]
    single: Callable[[int], object]  # argument: photo index
    batch_samples: list[float] = field(default_factory=list)
    single_rounds: list[float] = field(default_factory=list)  # mean seconds per photo, one per round

    @property
    def batch_ms(self) -> float:
        return statistics.median(self.batch_samples) * 1000.0 / BATCH

    @property
    def single_ms(self) -> float:
        return statistics.median(self.single_rounds) * 1000.0


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def run_rounds(timed: list[Timed], repeats: int, single_count: int, label: str) -> None:
    """Warm every contender up at both settings (tracing and freezing excluded), then ``repeats`` rounds in
    which each runs its batch call once and ``single_count`` one-photo calls, so load hits all alike."""
    start = time.perf_counter()
    for t in timed:
        t.batch()
        t.single(0)
    log(f"  {label}: warmed up {len(timed)} contenders ({time.perf_counter() - start:.0f} s)")
    for round_index in range(repeats):
        for t in timed:
            t.batch_samples.append(_seconds(t.batch))
            t.single_rounds.append(statistics.mean(_seconds(lambda i=i: t.single(i)) for i in range(single_count)))
        log(f"  {label}: round {round_index + 1}/{repeats} done (load {os.getloadavg()[0]:.1f})")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- ours ---------------------------------------------------------------------------------------------------
def engine_contenders(explainer: Explainer, batch: np.ndarray, classes: np.ndarray, layer: str) -> list[Timed]:
    photos = list(batch)
    targets = [Target.of_class(int(c)) for c in classes]

    def contender(name, methods):
        return Timed(
            name,
            lambda: explainer.explain(photos, methods=methods, layer=layer, target=targets, batch_size=BATCH),
            lambda i: explainer.explain([photos[i]], methods=methods, layer=layer, target=targets[i]),
        )

    def compiled(i=None):
        images = batch if i is None else batch[i:i + 1]
        return [t.numpy() for t in explainer.run_preprocessed_batch(images, methods=("gradcam",), layer=layer)]

    nine = tuple(key for key in NINE_KEYS if key in ONE_PASS)
    return ([contender(key, (key,)) for key in ONE_PASS] + [contender(ALL, AT_LAYER), contender(NINE, nine)]
            + ([contender(WITH_INPUT, ONE_PASS)] if AT_LAYER != ONE_PASS else [])
            + [Timed("gradcam: compiled call only", compiled, compiled)])


def perturbation(explainer: Explainer, batch: np.ndarray, classes: np.ndarray, repeats: int, quick: bool) -> dict:
    """Seconds per photo of Score-CAM, Faster-Score-CAM and Ablation-CAM, and Score-CAM's peak memory."""
    layer = LAYERS["mobilenetv2"]

    def one(key, i):
        return explainer.explain([batch[i]], methods=(key,), layer=layer, target=Target.of_class(int(classes[i])))

    out: dict = {"seconds": {}, "memory_mb": {}}
    for key in ("fastscorecam", "ablationcam"):
        one(key, 0)  # warm-up: compiles and freezes the score (or tail) function
        out["seconds"][key] = round(statistics.median(_seconds(lambda i=i: one(key, i))
                                                      for i in range(1, repeats + 1)), 3)
        log(f"  ours {key}: {out['seconds'][key]:.2f} s per photo")
    if quick:
        return out
    with PeakRss() as memory:  # the score function is warm (shared with fastscorecam)
        out["seconds"]["scorecam"] = round(_seconds(lambda: one("scorecam", 0)), 2)
    out["memory_mb"]["scorecam, 1 photo"] = memory.as_dict()
    log(f"  ours scorecam: {out['seconds']['scorecam']:.1f} s, peak RSS {memory.peak:.0f} MB")

    # Batch 16: the compiled call on all 16, then Score-CAM photo by photo; stopped once the first photo is
    # done (the per-photo work then repeats identically, so its peak is reached), to save ~15 × 30 s.
    stop = threading.Event()
    finished = []

    def progress(method, done, total):
        if done == total:
            finished.append(method)
            stop.set()

    options = RunOptions(progress=progress, stop=stop)
    targets = [Target.of_class(int(c)) for c in classes]
    with PeakRss() as memory:
        try:
            explainer.explain(list(batch), methods=("scorecam",), layer=layer, target=targets,
                              batch_size=BATCH, options=options)
        except Stopped:
            pass
    out["memory_mb"]["scorecam, batch 16 (stopped after photo 1 of 16)"] = memory.as_dict()
    log(f"  ours scorecam batch 16: peak RSS {memory.peak:.0f} MB ({len(finished)} photo done)")
    return out


# -- tf-keras-vis -------------------------------------------------------------------------------------------
def tf_keras_vis(model: keras.Model, batch: np.ndarray, classes: np.ndarray, repeats: int, quick: bool) -> dict:
    """ms per photo at batch 16, as its documentation recommends (clone, linear output), on ``out_relu``."""
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        log(f"  tf-keras-vis unavailable: {error}")
        return {"error": str(error)}
    score = CategoricalScore([int(c) for c in classes])
    seed = preprocess(batch, "torch").numpy()
    options = dict(penultimate_layer=LAYERS["mobilenetv2"], seek_penultimate_conv_layer=False)
    contenders = {"gradcam": (Gradcam, {}), "gradcampp": (GradcamPlusPlus, {}), "layercam": (Layercam, {})}
    if not quick:
        contenders["fastscorecam"] = (Scorecam, {"max_N": FAST_SCORECAM_CHANNELS})
    out = {}
    for key, (cls, extra) in contenders.items():
        try:
            explain = cls(model, model_modifier=ReplaceToLinear(), clone=True)
            if key == "fastscorecam":
                # One photo per call: at batch 16 it tiles (union of the 16 photos' top channels) × 16
                # masked inputs in memory at once; here that passed 24 GB and the OOM killer ended the run.
                def run(i=0):
                    return explain(CategoricalScore([int(classes[i])]), seed[i:i + 1], **options, **extra)

                run(0)
                samples = [_seconds(lambda i=i: run(i)) * BATCH for i in range(1, repeats + 1)]
            else:
                def run():
                    return explain(score, seed, **options, **extra)

                run()
                samples = [_seconds(run) for _ in range(repeats)]
            out[key] = round(statistics.median(samples) * 1000.0 / BATCH, 2)
            log(f"  tf-keras-vis {key}: {out[key]:.1f} ms per photo")
        except Exception as error:  # report and go on: a peer's failure is a finding, not a crash
            out[key] = f"failed: {type(error).__name__}: {error}"[:200]
            log(f"  tf-keras-vis {key}: {out[key]}")
    return out


# -- the PyTorch side ---------------------------------------------------------------------------------------
def run_torch(batch, classes, repeats: int, single_count: int, quick: bool, spin: bool) -> dict:
    """``torch_speed.py`` in a subprocess; OpenMP threads wait passively unless ``spin`` (see its docstring:
    spinning threads on shared cores make PyTorch 10-20x slower, which would flatter the engine)."""
    env = dict(os.environ)
    if not spin:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory() as folder:
        images = Path(folder) / "images.npz"
        np.savez(images, images=batch, classes=classes.astype(np.int64))
        command = [sys.executable, str(TORCH_SCRIPT), "--images", str(images), "--repeats", str(repeats),
                   "--single-count", str(single_count)] + (["--skip-slow"] if quick else [])
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"torch_speed.py failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- summary ------------------------------------------------------------------------------------------------
def ratios(ours: dict, torch_ms: dict) -> dict:
    """library → setting → method → their ms / our ms, for the methods both implement."""
    out = {}
    for library in ("torchcam", "pytorch_grad_cam"):
        out[library] = {}
        for setting in ("batch16", "single"):
            out[library][setting] = {key: round(times[setting] / ours[key][setting], 2)
                                     for key, times in torch_ms[library].items() if key in ours}
    return out


def headline(model_ratios: dict, ours: dict, prefix: str = "") -> dict:
    result = {}
    for library in ("torchcam", "pytorch_grad_cam"):
        for setting, suffix in (("batch16", ""), ("single", "_single")):
            per_method = {k: v for k, v in model_ratios[library][setting].items() if k in GRADIENT}
            worst = min(per_method, key=per_method.get)
            result[f"{prefix}speedup_vs_{library}{suffix}"] = per_method[worst]
            result[f"{prefix}speedup_vs_{library}{suffix}_slowest_method"] = worst
    result[f"{prefix}all_methods_vs_gradcam"] = round(ours[ALL]["batch16"] / ours["gradcam"]["batch16"], 2)
    if WITH_INPUT in ours:
        result[f"{prefix}all_with_fullgrad_vs_gradcam"] = round(ours[WITH_INPUT]["batch16"] / ours["gradcam"]["batch16"], 2)
    result[f"{prefix}nine_methods_vs_gradcam"] = round(ours[NINE]["batch16"] / ours["gradcam"]["batch16"], 2)
    return result


def print_model_table(title: str, ours: dict, torch_ms: dict, model_ratios: dict) -> None:
    tc, pg = torch_ms["torchcam"], torch_ms["pytorch_grad_cam"]

    def cell(table, key, setting):
        return f"{table[key][setting]:.1f}" if key in table else "–"

    def ratio(library, key, setting):
        value = model_ratios[library][setting].get(key)
        if value is None:
            return "–"
        bound = TARGETS[library + ("_single" if setting == "single" else "")]
        return f"{value:.1f}×" + ("" if key not in GRADIENT or value >= bound else " MISS")

    print(f"\n### {title}: ms per photo (batch 16 = one call on 16 photos; 1 = one photo per call)\n")
    print("| method | ours 16 | ours 1 | torchcam 16 | torchcam 1 | pgc 16 | pgc 1 | vs tc 16 | vs tc 1 | vs pgc 16 | vs pgc 1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, times in ours.items():
        print(f"| {key} | {times['batch16']:.1f} | {times['single']:.1f} | {cell(tc, key, 'batch16')} | "
              f"{cell(tc, key, 'single')} | {cell(pg, key, 'batch16')} | {cell(pg, key, 'single')} | "
              f"{ratio('torchcam', key, 'batch16')} | {ratio('torchcam', key, 'single')} | "
              f"{ratio('pytorch_grad_cam', key, 'batch16')} | {ratio('pytorch_grad_cam', key, 'single')} |")
    together = ours[ALL]["batch16"] / ours["gradcam"]["batch16"]
    verdict = "met" if together <= TARGETS["all_methods_vs_gradcam"] else "MISS"
    print(f"\nall {len(AT_LAYER)} one-pass layer methods together / Grad-CAM alone, batch 16: {together:.2f}× "
          f"({verdict}, target ≤ {TARGETS['all_methods_vs_gradcam']}×); the 9 first ones "
          f"({', '.join(NINE_KEYS)}): {ours[NINE]['batch16'] / ours['gradcam']['batch16']:.2f}×")
    if WITH_INPUT in ours:
        print(f"with FullGrad (a backward pass to the input) too: "
              f"{ours[WITH_INPUT]['batch16'] / ours['gradcam']['batch16']:.2f}× Grad-CAM alone")


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5, or 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, no slow references")
    parser.add_argument("--torch-spin", action="store_true",
                        help="leave PyTorch's OpenMP spin-waiting on (default: OMP_WAIT_POLICY=PASSIVE)")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    args.single_count = 4 if args.quick else BATCH
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    started = time.perf_counter()
    load = {"start": round(os.getloadavg()[0], 2)}
    photos, photo_note = load_photos(BATCH)
    batch = np.stack([resize_to_input(p) for p in photos])
    if photo_note.startswith(f"{BATCH} synthetic"):  # the project's own photo first, then synthetic ones
        sample = PROJECT_ROOT / "assets" / "sample_car.jpg"
        if sample.is_file():
            import cv2

            batch[0] = resize_to_input(cv2.cvtColor(cv2.imread(str(sample)), cv2.COLOR_BGR2RGB))
            photo_note = f"assets/sample_car.jpg + {BATCH - 1} synthetic random photos (shared photos absent)"

    bundle = mobilenetv2_offline()
    explainer = Explainer(bundle, freeze="now")
    explainer.MAX_COMPILED = 2 * len(ONE_PASS) + 8  # every contender keeps its compiled function (interleaving)
    classes = np.argmax(explainer.run_preprocessed_batch(batch, methods=("gradcam",),
                                                         layer=LAYERS["mobilenetv2"])[1].numpy(), axis=-1)
    log(f"{photo_note}; MobileNetV2 classes {classes.tolist()}")

    log("PyTorch libraries (subprocess) ...")
    torch_result = run_torch(batch, classes, 3, args.single_count, args.quick, args.torch_spin)
    load["after_torch"] = round(os.getloadavg()[0], 2)

    log("ours, MobileNetV2 ...")
    timed = engine_contenders(explainer, batch, classes, LAYERS["mobilenetv2"])
    run_rounds(timed, args.repeats, args.single_count, "MobileNetV2")
    ours = {"mobilenetv2": {t.name: {"batch16": round(t.batch_ms, 2), "single": round(t.single_ms, 2)}
                            for t in timed}}
    slow = perturbation(explainer, batch, classes, 2 if args.quick else 3, args.quick)
    tkv = tf_keras_vis(bundle.model, batch, classes, 2 if args.quick else 3, args.quick)
    load["after_mobilenetv2"] = round(os.getloadavg()[0], 2)
    del explainer, timed
    gc.collect()

    log("ours, ResNet50 (random weights) ...")
    keras.utils.set_random_seed(0)
    resnet = inspect_model(build_cam_model("resnet50", num_classes=1000, weights=None),
                           name="ResNet50 (random weights)", source="bench", preprocessing="caffe")
    explainer = Explainer(resnet, freeze="now")
    explainer.MAX_COMPILED = 2 * len(ONE_PASS) + 8
    timed = engine_contenders(explainer, batch, classes, LAYERS["resnet50"])
    run_rounds(timed, max(1, args.repeats - 2), args.single_count, "ResNet50")
    ours["resnet50"] = {t.name: {"batch16": round(t.batch_ms, 2), "single": round(t.single_ms, 2)} for t in timed}
    load["end"] = round(os.getloadavg()[0], 2)

    # -- tables -------------------------------------------------------------------------------------------
    torch_ms = torch_result["ms_per_photo"]
    all_ratios = {model: ratios(ours[model], torch_ms[model]) for model in ours}
    result = {}
    result.update(headline(all_ratios["mobilenetv2"], ours["mobilenetv2"]))
    result.update(headline(all_ratios["resnet50"], ours["resnet50"], prefix="resnet50_"))
    reference_slow = torch_result["seconds_per_photo"].get("mobilenetv2", {}).get("pytorch_grad_cam", {})
    for key in ("scorecam", "ablationcam"):
        if key in reference_slow and key in slow["seconds"]:
            result[f"{key}_speedup_vs_pytorch_grad_cam"] = round(reference_slow[key] / slow["seconds"][key], 1)
    result["fast_scorecam_seconds"] = slow["seconds"]["fastscorecam"]

    print(f"\n## Method speed, CPU ({os.cpu_count()} cores), {photo_note}\n")
    print(f"ours: median of {args.repeats} rounds (ResNet50: {max(1, args.repeats - 2)}), one photo per call = mean "
          f"over {args.single_count} photos; PyTorch: {torch_result['settings']['threads']} threads, "
          f"{torch_result['settings']['interop_threads']} inter-op, OMP_WAIT_POLICY "
          f"{torch_result['settings']['omp_wait_policy']}, median of {torch_result['settings']['repeats']} "
          f"batch calls; load average {load}; torch side {torch_result['load_average_before_after']}")
    print_model_table(f"MobileNetV2 (ImageNet), {LAYERS['mobilenetv2']} / features.18", ours["mobilenetv2"],
                      torch_ms["mobilenetv2"], all_ratios["mobilenetv2"])
    print_model_table(f"ResNet50 (random weights), {LAYERS['resnet50']} / layer4[-1]", ours["resnet50"],
                      torch_ms["resnet50"], all_ratios["resnet50"])

    print("\n### Perturbation methods, MobileNetV2, one photo: seconds\n")
    print("| method | ours | pytorch-grad-cam | speedup | target |")
    print("|---|---:|---:|---:|---|")
    for key, label in (("scorecam", "Score-CAM (all channels)"), ("ablationcam", "Ablation-CAM"),
                       ("fastscorecam", f"Faster-Score-CAM ({FAST_SCORECAM_CHANNELS} channels)")):
        ours_s = slow["seconds"].get(key)
        theirs = reference_slow.get(key)
        speedup = result.get(f"{key}_speedup_vs_pytorch_grad_cam")
        if key == "fastscorecam":
            target = f"≤ {TARGETS['fast_scorecam_seconds']} s: " + ("met" if ours_s <= TARGETS["fast_scorecam_seconds"] else "MISS")
        elif speedup is None:
            target = "(not run)"
        else:
            target = f"≥ {TARGETS[key]}×: " + ("met" if speedup >= TARGETS[key] else "MISS")
        print(f"| {label} | {'–' if ours_s is None else f'{ours_s:.2f}'} | "
              f"{'–' if theirs is None else f'{theirs:.1f}'} | {'–' if speedup is None else f'{speedup:.1f}×'} | {target} |")
    for name, memory in slow["memory_mb"].items():
        print(f"\npeak resident memory, ours {name}: {memory['peak']} MB ({memory['before']} MB before, "
              f"+{memory['increase']} MB)")
    for key, memory in torch_result.get("peak_rss_mb", {}).get("mobilenetv2", {}).get("pytorch_grad_cam", {}).items():
        print(f"peak resident memory, pytorch-grad-cam {key}, 1 photo: {memory['peak']} MB ({memory['before']} MB before)")

    print("\n### tf-keras-vis 0.8.7, MobileNetV2, batch 16 (Scorecam: one photo per call): ms per photo\n")
    print("| method | tf-keras-vis | ours | speedup |")
    print("|---|---:|---:|---:|")
    for key, value in tkv.items():
        if key == "error":
            print(f"| – | {value} | | |")
            continue
        mine = slow["seconds"]["fastscorecam"] * 1000.0 if key == "fastscorecam" else ours["mobilenetv2"][key]["batch16"]
        note = f" (max_N={FAST_SCORECAM_CHANNELS}, both one photo per call)" if key == "fastscorecam" else ""
        if isinstance(value, str):
            print(f"| {key} | {value} | {mine:.1f} | – |")
        else:
            print(f"| {key}{note} | {value:.1f} | {mine:.1f} | {value / mine:.1f}× |")
            result[f"speedup_vs_tf_keras_vis_{key}"] = round(value / mine, 2)

    result.update(
        ms_per_photo={"ours": ours, "torch": torch_ms, "tf_keras_vis": tkv},
        ratios=all_ratios, perturbation_seconds={"ours": slow["seconds"], "pytorch_grad_cam": reference_slow},
        peak_rss_mb={"ours": slow["memory_mb"], "pytorch_grad_cam": torch_result.get("peak_rss_mb", {})},
        torch_settings=torch_result["settings"], tf_threads=TF_THREADS, torch_load_average=torch_result["load_average_before_after"],
        load_average=load, photos=photo_note, quick=args.quick, repeats=args.repeats,
        timing_seconds=round(time.perf_counter() - started, 1),
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
