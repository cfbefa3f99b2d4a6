"""The evaluation loop on synthetic maps with known answers, resuming after an interruption, and the
written results."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from core.cam import RawExplanation
from core.data.dataset import Split
from core.data.records import AnnotationTable, Record
from core.evaluate.outputs import load_results, write_outputs
from core.evaluate.pipeline import Pipeline, sweep_split
from core.evaluate.report import Choice, per_class_rows, per_photo_rows, summarize
from core.evaluate.store import ResultStore, settings_hash
from core.metrics import CENTER_FRACTIONS, THRESHOLDS

# 64×64 photos whose bright square is exactly what the fake explainer "sees" (8×8 cells of 8 px, so
# nearest upsampling gives exact blocks). (bright square, truth box, IoU of the square with the truth).
PHOTOS = [
    ((16, 16, 48, 48), (16, 16, 48, 48), 1.0),
    ((16, 16, 48, 48), (16, 16, 48, 64), 2 / 3),  # truth taller: 1024 / 1536
    ((0, 0, 32, 32), (16, 16, 48, 48), 1 / 7),  # overlap 256 / union 1792
    ((8, 8, 24, 24), None, None),  # no ground truth: classified, not scored
]
TAU = int(np.flatnonzero(THRESHOLDS == 0.5)[0])
HALF = int(np.flatnonzero(CENTER_FRACTIONS == 0.5)[0])


def _photo(square) -> np.ndarray:
    image = np.zeros((64, 64, 3), np.uint8)
    x1, y1, x2, y2 = square
    image[y1:y2, x1:x2] = 255
    return image


def synthetic_split() -> Split:
    n = len(PHOTOS)
    boxes = np.array([truth if truth else (np.nan,) * 4 for _, truth, _ in PHOTOS], dtype=np.float64)
    table = AnnotationTable("test", tuple(f"synthetic/{i}" for i in range(n)), np.array([0, 1, 0, 1]),
                            boxes, (None,) * n, ("sedan", "coupe"))

    def load(i: int) -> Record:
        row = table.row(i)
        return Record(row.id, _photo(PHOTOS[i][0]), row.label, row.class_name, row.box, "test")

    return Split(table, load)


class FakeExplainer:
    """Maps = the photo's brightness averaged over 8×8-pixel cells; class 1 always predicted."""

    def __init__(self):
        self.photos_seen = 0

    def check_request(self, methods, layer):
        return tuple((m, "features") for m in methods)

    def explain(self, images, methods, layer=None, target=None, variant="paper", batch_size=16):
        self.photos_seen += len(images)
        out = []
        for image in images:
            cells = cv2.resize(image[..., 0].astype(np.float32) / 255, (8, 8), interpolation=cv2.INTER_AREA)
            out.append(RawExplanation(np.array([0.2, 0.8]), np.array([0.0, 1.4]), np.array([0.0, 1.0]),
                                      {(m, "features"): cells for m in methods}, variant))
        return out


PIPELINE = Pipeline(methods=("cam",), interpolation="nearest")


def _sweep(tmp_path, explainer=None, progress=None):
    store = ResultStore(tmp_path, {"test": "synthetic"})
    sweep_split(None, explainer or FakeExplainer(), synthetic_split(), PIPELINE, store, batch_size=2,
                progress=progress)
    return store.load()


def _choices(n: int):
    return {"cam": Choice(np.full(n, TAU), "test")}, Choice(np.full(n, HALF), "test")


def test_metrics_of_known_maps(tmp_path):
    arrays = _sweep(tmp_path)
    assert arrays["id"].tolist() == [f"synthetic/{i}" for i in range(4)]
    expected = [iou for _, _, iou in PHOTOS[:3]]
    # τ 0 takes the whole photo (truth area / 4096); any τ > 0 the bright square
    assert arrays["largest__cam"][:3, 0].tolist() == pytest.approx([0.25, 0.375, 0.25])
    assert arrays["largest__cam"][:3, 1:] == pytest.approx(np.repeat(np.array(expected)[:, None], 99, 1))
    assert np.isnan(arrays["largest__cam"][3]).all()
    taus, fraction = _choices(4)
    correct = np.array([False, True, False, True])  # labels 0, 1, 0, 1; class 1 predicted
    summary = summarize(arrays, ["cam"], taus, fraction, correct)
    cam = summary["cam"]
    assert (summary["n"], summary["n_photos"], summary["n_without_box"]) == (3, 4, 1)
    assert cam["tau"] == 0.5 and cam["mean_iou"] == pytest.approx(sum(expected) / 3)
    assert cam["median_iou"] == pytest.approx(2 / 3)
    assert cam["boxacc"] == pytest.approx({"0.3": 2 / 3, "0.5": 2 / 3, "0.7": 1 / 3})
    assert cam["maxboxacc"] == pytest.approx(2 / 3) and cam["maxboxacc_tau"] == 0.01
    assert cam["maxboxaccv2"] == pytest.approx(5 / 9)  # (2/3 + 2/3 + 1/3) / 3
    assert cam["gt_known_loc"] == pytest.approx(2 / 3)
    assert cam["top1_loc"] == pytest.approx(1 / 3)  # only photo 1 is right and localised
    full, center = summary["baselines"]["full_image"], summary["baselines"]["center_box"]
    assert full["mean_iou"] == pytest.approx((0.25 + 0.375 + 0.25) / 3)
    # the centred half box is (16, 16, 48, 48): truths of photos 0 and 2 exactly, photo 1's at 2/3
    assert center["fraction"] == 0.5 and center["mean_iou"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert summary["classification_accuracy"] == 0.5


def test_per_photo_boxes_are_in_photo_pixels(tmp_path):
    arrays = _sweep(tmp_path)
    taus, fraction = _choices(4)
    rows = per_photo_rows(arrays, ["cam"], taus, fraction, None, ("sedan", "coupe"), ("a", "b"), PIPELINE)
    assert [r["cam_box"] for r in rows] == [[16.0, 16.0, 48.0, 48.0], [16.0, 16.0, 48.0, 48.0],
                                           [0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 24.0, 24.0]]
    assert rows[1]["cam_iou"] == pytest.approx(2 / 3) and rows[3]["cam_iou"] is None
    assert rows[0]["predicted_name"] == "b" and rows[0]["class_name"] == "sedan"
    classes = per_class_rows(rows, ["cam"])
    assert [(c["class_name"], c["n"]) for c in classes] == [("sedan", 2), ("coupe", 2)]
    assert classes[0]["cam_mean_iou"] == pytest.approx((1 + 1 / 7) / 2)
    assert classes[1]["cam_mean_iou"] == pytest.approx(2 / 3)  # photo 3 has no box


class Interrupt(Exception):
    pass


def test_interrupted_run_keeps_finished_batches_and_resumes(tmp_path):
    def stop_after_first_batch(progress):
        if progress.done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        _sweep(tmp_path / "run", progress=stop_after_first_batch)
    kept = ResultStore(tmp_path / "run", {"test": "synthetic"}).load()
    assert kept["id"].tolist() == ["synthetic/0", "synthetic/1"]
    explainer = FakeExplainer()
    seen = []
    resumed = _sweep(tmp_path / "run", explainer, progress=seen.append)
    assert explainer.photos_seen == 2  # only the photos not stored yet
    assert (seen[0].done, seen[0].new) == (2, 0) and (seen[-1].done, seen[-1].new) == (4, 2)
    fresh = _sweep(tmp_path / "fresh")
    assert resumed.keys() == fresh.keys()
    for key in fresh:
        np.testing.assert_array_equal(resumed[key], fresh[key])


def test_store_returns_only_the_requested_photos_and_its_throughput(tmp_path):
    _sweep(tmp_path)
    store = ResultStore(tmp_path, {"test": "synthetic"})
    assert store.load(["synthetic/2", "synthetic/0"])["id"].tolist() == ["synthetic/0", "synthetic/2"]
    assert store.photos_per_second() > 0


def test_other_settings_never_reuse_stored_results(tmp_path):
    _sweep(tmp_path)
    assert ResultStore(tmp_path, {"test": "other"}).load() == {}
    assert settings_hash({"a": 1, "b": 2}) == settings_hash({"b": 2, "a": 1})


def test_written_folder_reads_back_with_figures(tmp_path):
    arrays = _sweep(tmp_path)
    taus, fraction = _choices(4)
    summary = summarize(arrays, ["cam"], taus, fraction, None)
    summary.update({"pipeline": PIPELINE.as_dict(), "model": "fake"})
    rows = per_photo_rows(arrays, ["cam"], taus, fraction, None, ("sedan", "coupe"), ("a", "b"), PIPELINE)
    write_outputs(tmp_path, summary, rows, per_class_rows(rows, ["cam"]), ["cam"])
    results = load_results(tmp_path)
    assert results.summary["cam"]["mean_iou"] == pytest.approx(summary["cam"]["mean_iou"])
    assert set(results.figures) == {"iou_histogram", "boxacc_vs_tau"}  # one method: no scatter
    assert results.per_photo[1]["cam_iou"] == "0.66667" and results.per_photo[3]["cam_iou"] == ""
    assert results.per_photo[0]["cam_x2"] == "48.0" and results.per_photo[0]["truth_y2"] == "48.0"
    with open(tmp_path / "per_photo.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    if "png_note" not in results.summary["plots"]:
        assert set(results.pngs) == {"iou_histogram", "boxacc_vs_tau"}
    assert not list(tmp_path.glob("**/*.tmp"))
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        load_results(tmp_path / "elsewhere")
    assert json.loads((tmp_path / "summary.json").read_text())["files"][0] == "per_photo.csv"
