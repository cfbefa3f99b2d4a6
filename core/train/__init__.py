"""Fine-tune the CAM model (backbone → global average pooling → Dense softmax) on Cars196.

    python -m core.train --data /data/stanford_cars --out models/resnet50-cars          # recommended
    python -m core.train --data /data/stanford_cars --out models/original --preset original
    python -m core.train --out models/resnet50-cars --resume                            # after a stop

The original study trained ResNet50 (ImageNet) + GAP + Dense(196) with ``SGD(lr=0.01)``, batch 16, 15
epochs, photos resized to 224 and divided by 255, and saved an ``.h5``. Kept as ``--preset original``;
the default ``recommended`` preset fixes what it gets wrong: preprocessing that matches the ImageNet
weights (ResNet50 "caffe", offline MobileNetV2 "torch"; /255 feeds ResNet50 inputs it never saw),
augmentation, momentum with warm-up and cosine decay, early stopping; ``learning_rate=`` (Keras 3's
name), no ``use_multiprocessing`` (gone in Keras 3), a ``.keras`` file with a metadata sidecar.

Every run validates on the test split's labelled photos, or on a held-out part of train (and says so),
checkpoints each epoch (resumable), logs ``logs/history.csv`` and TensorBoard scalars, uses every GPU
(``MirroredStrategy`` for several, mixed precision on tensor cores) or the CPU, and writes
``model.keras`` + ``model.meta.json`` that :func:`core.model_sources.load_keras_file`, ``core.explain``
and the dashboard load. Offline, ResNet50's ImageNet weights cannot be downloaded: ``--backbone auto``
then uses the offline MobileNetV2 (real ImageNet weights) and says so.

Modules: ``config`` (presets, settings), ``backbones``, ``data`` (photo selection and streaming),
``augment``, ``devices``, ``state`` (checkpoints, early stopping), ``progress`` (epoch lines, TensorBoard),
``metadata`` (final model and sidecar), ``run`` (the orchestration), ``__main__`` (CLI).
"""

__all__ = ["train", "TrainConfig", "TrainResult", "make_config", "PRESETS", "TrainingDataError"]

_HOMES = {"train": "run", "TrainResult": "run", "TrainConfig": "config", "make_config": "config",
          "PRESETS": "config", "TrainingDataError": "data"}


def __getattr__(name: str):
    """Import on first use, so ``python -m core.train`` can quiet TensorFlow before it loads."""
    if name not in _HOMES:
        raise AttributeError(f"module 'core.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"core.train.{_HOMES[name]}"), name)
