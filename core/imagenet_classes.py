"""The 1000 ImageNet classes, offline, in the order Keras and torchvision use (sorted WordNet id)."""

from __future__ import annotations

import functools
import json

from core.paths import ASSETS_DIR

# Whole road vehicles among the ImageNet classes, so an ImageNet model can be asked for "a car"
# rather than for one body style (or for the grille, which it often finds most telling).
CAR_CLASS_INDICES: tuple[int, ...] = (
    407,  # ambulance
    436,  # beach wagon, station wagon
    468,  # cab, taxi
    511,  # convertible
    609,  # jeep
    627,  # limousine
    654,  # minibus
    656,  # minivan
    661,  # Model T
    675,  # moving van
    717,  # pickup
    734,  # police van
    751,  # racer, race car
    817,  # sports car
)


@functools.cache
def imagenet_wnids_and_names() -> tuple[tuple[str, str], ...]:
    """(WordNet id, full synset text) for each class index."""
    rows = json.loads((ASSETS_DIR / "imagenet_classes.json").read_text())
    if len(rows) != 1000:
        raise RuntimeError(f"assets/imagenet_classes.json has {len(rows)} classes, expected 1000")
    return tuple((wnid, name) for wnid, name in rows)


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """Short readable names ("sports car"), the first synonym of each synset."""
    return tuple(name.split(",")[0].strip() for _, name in imagenet_wnids_and_names())
