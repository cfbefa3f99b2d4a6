"""The finished model and its sidecar ``model.meta.json``, read by :func:`core.model_sources.load_keras_file`.

Sidecar keys (the engine reads the first ones; the dashboard can show ``training.summary`` as is)::

    name, class_names, preprocessing          what the engine needs to run the model correctly
    input_size [h, w], cam_layer, backbone    for people and tools; the engine re-finds them in the graph
    threshold, threshold_source               only when calibrated (the engine's default applies otherwise)
    training {summary, preset, dataset, ...}  how it was trained; ``summary`` is one human line

The sidecar is written before ``model.keras`` and both atomically, so a process that finds the model
(the dashboard lists ``models/**/*.keras``, newest first) always finds its metadata too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras

from core.train.progress import format_duration
from core.files import write_atomically
from core.train.state import RunFolder, TrainingState

__all__ = ["training_summary", "build_metadata", "save_final_model"]


def training_summary(info: dict) -> str:
    """One line: what was trained, on what, how long, and how well (validation accuracy when known)."""
    parts = [f"{info['backbone_label']} from {info['start_weights']}",
             f"{info['epochs_run']}/{info['epochs_planned']} epochs"
             + (" (stopped early)" if info["stopped_early"] else ""),
             f"{info['train_photos']} training photos", f"preset {info['preset']}"]
    best = info.get("best")
    if best:
        parts.append(f"val accuracy {best['val_accuracy']:.3f} at epoch {best['epoch']} "
                     f"({info['validation']})")
    else:
        parts.append("no validation")
    parts.append(f"{format_duration(info['seconds'])} on {info['device']}")
    return " · ".join(parts)


def build_metadata(*, name: str, class_names, preprocessing: str, input_size: int, cam_layer: str,
                   backbone: str, training: dict) -> dict:
    training = {**training, "summary": training_summary(training)}
    return {
        "name": name, "class_names": list(class_names), "preprocessing": preprocessing,
        "input_size": [input_size, input_size], "cam_layer": cam_layer, "backbone": backbone,
        "training": training,
    }


def training_info(*, config, backbone, data, devices_text: str, precision: str, state: TrainingState,
                  learning: str, augmentation: str, weights_epoch: int) -> dict:
    """The ``training`` block of the sidecar (see module docstring)."""
    final = state.history[-1] if state.history else {}
    best = None
    if state.best_epoch is not None:
        best = {"epoch": state.best_epoch, "val_accuracy": state.best_value,
                **{k: state.history[state.best_epoch - 1].get(k) for k in ("val_loss", "accuracy", "loss")}}
    return {
        "preset": config.preset,
        "dataset": config.data,
        "backbone_label": backbone.label,
        "start_weights": backbone.start,
        "backbone_note": backbone.note,
        "train_photos": len(data.train),
        "validation": data.validation.description if data.validation else "none",
        "notes": list(data.notes),
        "epochs_planned": config.epochs,
        "epochs_run": state.epoch,
        "steps": state.step,
        "stopped_early": state.stopped_early,
        "batch_size": config.batch_size,
        "image_size": config.image_size,
        "learning": learning,
        "augmentation": augmentation,
        "weights_from_epoch": weights_epoch,
        "final": {k: v for k, v in final.items() if k != "epoch"},
        "best": best,
        "skipped_photos": int(sum(row.get("skipped_photos", 0) for row in state.history)),
        "device": devices_text,
        "precision": precision,
        "seconds": round(state.seconds, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keras": keras.__version__,
    }


def save_final_model(model: keras.Model, metadata: dict, folder: RunFolder) -> Path:
    """Sidecar first, then ``model.keras``, both atomically; returns the model path.

    Keras needs a ``.keras`` name to save to, and anything named so under ``models/`` is listed by the
    dashboard at once; so the model is saved in a temporary folder, copied beside the target under a
    ``.tmp`` name and renamed.
    """
    write_atomically(folder.metadata, json.dumps(metadata, indent=1).encode())
    partial = folder.root / f".{folder.model.name}.{os.getpid()}.tmp"
    with tempfile.TemporaryDirectory(prefix="cam-explorer-save-") as scratch:
        saved = Path(scratch) / folder.model.name
        model.save(saved)
        try:
            shutil.copyfile(saved, partial)
            os.replace(partial, folder.model)
        finally:
            partial.unlink(missing_ok=True)
    return folder.model
