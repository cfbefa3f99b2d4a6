"""Known answers for ``core.faithfulness`` on tiny hand-made inputs and toy score functions, whose every
value can be worked out by hand; one end-to-end run on the real offline MobileNetV2."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.sparse.linalg import spsolve

from core.boxes import InvalidBoxError
from core.faithfulness import (
    METRIC_KEYS,
    METRICS,
    area_under_curve,
    confidence_change,
    deletion_insertion_curves,
    energy_pointing_game,
    evaluate_faithfulness,
    explainer_score_fn,
    forward_passes,
    impute_removed,
    kept_pixels,
    metric,
    model_inputs,
    perturbed_counts,
    pointing_game,
    road_curves,
)
from core.faithfulness.imputation import _system
from core.faithfulness.maps import half_pixel_matrix, resize_maps, saliency_ranks


class CountingScore:
    """score = value of channel 0 at pixel (0, 0) of each input; counts the inputs it scored and the
    largest batch it was given."""

    def __init__(self):
        self.rows = 0
        self.largest = 0

    def __call__(self, inputs, photos):
        self.rows += len(inputs)
        self.largest = max(self.largest, len(inputs))
        return inputs[:, 0, 0, 0]


def ones(count=1, size=2):
    return np.ones((count, size, size, 3), np.float32)


# -- ranking and resizing ---------------------------------------------------------------------------------
def test_ranks_put_the_most_salient_first_and_break_ties_row_major():
    ranks = saliency_ranks(np.array([[[1.0, 3.0], [3.0, 2.0]]], np.float32))
    assert ranks.tolist() == [[3, 0, 1, 2]]


def test_resizing_matches_opencv_bilinear_when_enlarging():
    low = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    ours = resize_maps(low[None], 224, 224)[0]
    theirs = cv2.resize(low, (224, 224), interpolation=cv2.INTER_LINEAR)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(half_pixel_matrix(7, 224).sum(axis=1), 1.0)


def test_perturbed_counts_end_at_every_pixel():
    assert perturbed_counts(10, 4).tolist() == [0, 3, 6, 9, 10]
    assert perturbed_counts(4, 20).tolist() == [0, 1, 2, 3, 4]
    assert len(perturbed_counts(224 * 224, 20)) == 21
    with pytest.raises(ValueError, match="steps"):
        perturbed_counts(10, 0)


# -- deletion / insertion ---------------------------------------------------------------------------------
def test_deletion_and_insertion_of_the_scored_pixel_first():
    """The scored pixel is the most salient: deletion drops to 0 after one pixel, insertion jumps to 1."""
    score = CountingScore()
    maps = np.array([[[4.0, 3.0], [2.0, 1.0]]])
    curves = deletion_insertion_curves(ones(), maps, score, steps=4)
    assert curves["fractions"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curves["deletion"].tolist() == [[1, 0, 0, 0, 0]]
    assert curves["insertion"].tolist() == [[0, 1, 1, 1, 1]]
    assert area_under_curve(curves["fractions"], curves["deletion"]).tolist() == [0.125]
    assert area_under_curve(curves["fractions"], curves["insertion"]).tolist() == [0.875]
    assert score.rows == 1 + 2 * 3 + 1  # original, 3 interior points per curve, the shared all-baseline input


def test_deletion_of_the_scored_pixel_last_into_a_given_baseline():
    maps = np.array([[[1.0, 3.0], [2.0, 4.0]]])
    baseline = np.full((1, 2, 2, 3), 0.5, np.float32)
    curves = deletion_insertion_curves(ones(), maps, CountingScore(), baseline, curves=("deletion",), steps=4)
    assert set(curves) == {"fractions", "deletion"}
    assert curves["deletion"].tolist() == [[1, 1, 1, 1, 0.5]]
    assert area_under_curve(curves["fractions"], curves["deletion"])[0] == pytest.approx(0.9375)


def test_a_flat_map_deletes_in_row_major_order():
    curves = deletion_insertion_curves(ones(), np.zeros((1, 2, 2)), CountingScore(), steps=4,
                                       original=np.ones(1))
    assert curves["deletion"].tolist() == [[1, 0, 0, 0, 0]]


def test_curves_reject_bad_requests():
    with pytest.raises(ValueError, match="curves"):
        deletion_insertion_curves(ones(), np.zeros((1, 2, 2)), CountingScore(), curves=("both",))
    with pytest.raises(ValueError, match="baseline"):
        deletion_insertion_curves(ones(), np.zeros((1, 2, 2)), CountingScore(), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="one score per input"):
        deletion_insertion_curves(ones(), np.zeros((1, 2, 2)), lambda x, p: np.zeros((len(x), 2)))
    with pytest.raises(ValueError, match="one score per input"):
        deletion_insertion_curves(ones(), np.zeros((1, 2, 2)), CountingScore(), original=np.ones(3))


# -- average drop / increase ------------------------------------------------------------------------------
def test_average_drop_and_increase_by_hand():
    """score = mean of channel 0 (photo 0) or 1 − that mean (photo 1); the map keeps one pixel of four."""
    def score(inputs, photos):
        mean = inputs[..., 0].mean(axis=(1, 2))
        return np.where(photos == 0, mean, 1.0 - mean)

    maps = np.array([[[5.0, 1.0], [1.0, 1.0]]] * 2)  # normalised: 1/(1 + 1e-8) at (0, 0), 0 elsewhere
    inputs = np.concatenate([ones(), 0.8 * ones()])
    result = confidence_change(inputs, maps, score)
    kept = 0.25 / (1 + 1e-8)
    assert result["avg_drop"][0] == pytest.approx((1 - kept) / (1 + 1e-7), abs=1e-6)
    assert result["avg_drop"][1] == 0.0  # masking raised photo 1's score from 0.2 to ~0.95
    assert result["avg_increase"].tolist() == [0.0, 1.0]


def test_a_flat_map_masks_everything_out():
    result = confidence_change(ones(), np.full((1, 3, 3), 7.0), CountingScore())
    assert result["masked_scores"].tolist() == [0.0]
    assert result["avg_drop"][0] == pytest.approx(1.0, abs=1e-6)


def test_low_resolution_maps_are_upsampled_bilinearly():
    """A 1×2 map [0, 1] becomes, across 4 columns, 0, 0.25, 0.75, 1 (half-pixel bilinear)."""
    def score(inputs, photos):
        return inputs[:, 0, :, 0].sum(axis=1)

    result = confidence_change(ones(size=4), np.array([[[0.0, 1.0]]]), score)
    assert result["masked_scores"][0] == pytest.approx(2.0, abs=1e-6)


# -- ROAD -------------------------------------------------------------------------------------------------
def test_road_keeps_pixels_below_the_percentile():
    saliency = (np.arange(10) / 9).reshape(2, 5)
    assert kept_pixels(saliency, 50, "morf").ravel().tolist() == [True] * 5 + [False] * 5
    assert kept_pixels(saliency, 50, "lerf").ravel().tolist() == [False] * 5 + [True] * 5
    with pytest.raises(ValueError, match="order"):
        kept_pixels(saliency, 50, "both")


def test_imputation_of_one_pixel_is_the_weighted_mean_of_its_neighbours():
    image = np.zeros((3, 3, 3), np.float32)
    image[1, 0] = image[1, 2] = image[0, 1] = image[2, 1] = 1.0  # orthogonal neighbours 1, diagonal ones 0
    keep = np.ones((3, 3), bool)
    keep[1, 1] = False
    assert np.allclose(impute_removed(image, keep, noise=0)[1, 1], 4 / 6)
    corner = np.ones((3, 3), bool)
    corner[0, 0] = False
    # neighbours inside: (0, 1) and (1, 0) at 1/6 with value 1, (1, 1) at 1/12 with value 0
    assert np.allclose(impute_removed(image, corner, noise=0)[0, 0], (2 / 6) / (5 / 12))


def test_imputation_solves_the_reference_system():
    rng = np.random.default_rng(3)
    image = rng.standard_normal((12, 9, 3)).astype(np.float32)
    keep = rng.random((12, 9)) < 0.3
    removed, matrix, rhs = _system(keep, image)
    expected = spsolve(matrix.tocsc(), rhs)
    out = impute_removed(image, keep, noise=0)
    assert np.abs(out.reshape(-1, 3)[removed] - expected).max() < 1e-5
    assert np.array_equal(out[keep], image[keep])
    noisy = impute_removed(image, keep, noise=0.01, rng=np.random.default_rng(0))
    assert 0.005 < np.std(noisy[~keep] - out[~keep]) < 0.02
    assert np.array_equal(noisy[keep], image[keep])


def test_imputation_with_nothing_kept_is_zero():
    assert not impute_removed(np.ones((4, 4, 3)), np.zeros((4, 4), bool), noise=0).any()


def test_road_on_the_scored_pixel():
    """Only pixel (0, 0) is 1 and it is the most salient: MoRF always imputes it from zeros (−1), LeRF
    never removes it (0), combined = (0 − (−1)) / 2."""
    inputs = np.zeros((1, 8, 8, 3), np.float32)
    inputs[0, 0, 0] = 1.0
    saliency = np.linspace(0, 0.9, 64).reshape(1, 8, 8)[:, ::-1, ::-1].copy()
    saliency[0, 0, 0] = 1.0
    result = evaluate_faithfulness(inputs, saliency, CountingScore(),
                                   ("road_morf", "road_lerf", "road_combined"), road_noise=0)
    assert np.allclose(result["road_morf_curve"], -1.0, atol=1e-6)
    assert np.allclose(result["road_lerf_curve"], 0.0)
    assert result["road_combined"] == pytest.approx([0.5])


def test_noisy_road_does_not_depend_on_threads_or_chunks():
    rng = np.random.default_rng(2)
    inputs = rng.random((2, 8, 8, 3)).astype(np.float32)
    maps = rng.random((2, 8, 8)).astype(np.float32)
    one = road_curves(inputs, maps, CountingScore(), (20, 60), workers=1, chunk=32, seed=5)
    two = road_curves(inputs, maps, CountingScore(), (20, 60), workers=2, chunk=3, seed=5)
    other = road_curves(inputs, maps, CountingScore(), (20, 60), seed=6)
    assert all(np.array_equal(one[k], two[k]) for k in ("morf", "lerf"))
    assert not np.array_equal(one["morf"], other["morf"])


def test_road_rejects_an_empty_request():
    with pytest.raises(ValueError, match="percentile"):
        road_curves(ones(), np.zeros((1, 2, 2)), CountingScore(), percentiles=())


# -- pointing games ---------------------------------------------------------------------------------------
def test_pointing_game_within_15_pixels():
    heat = np.zeros((10, 10))
    heat[5, 2] = 1.0  # its centre is (x, y) = (25, 55) in a 100×100 photo
    assert pointing_game(heat, (40, 50, 60, 60), image_shape=(100, 100))  # 15 px away: a hit
    assert not pointing_game(heat, (41, 50, 60, 60), image_shape=(100, 100))
    assert pointing_game(heat, [(90, 90, 100, 100), (0, 0, 30, 60)], image_shape=(100, 100))
    assert pointing_game(heat, (5, 0, 10, 10), tolerance=2.5)  # at map size: centre (2.5, 5.5)
    assert not pointing_game(heat, (5, 0, 10, 10), tolerance=2.4)


def test_pointing_game_misses_without_a_maximum():
    assert not pointing_game(np.zeros((5, 5)), (0, 0, 5, 5))
    assert not pointing_game(np.full((5, 5), 0.3), (0, 0, 1, 1))


def test_energy_pointing_game_by_hand():
    heat = np.array([[4.0, 0, 0, 1], [0, 2, 0, 0], [0, 0, 0, 0], [-5, 0, 0, 3]])
    assert energy_pointing_game(heat, (0, 0, 2, 2)) == pytest.approx(0.6)
    union = [(0, 0, 2, 2), (1, 1, 4, 4)]  # overlapping boxes: cell (1, 1) counts once
    assert energy_pointing_game(heat, union) == pytest.approx(0.9)
    assert energy_pointing_game(heat, (0, 0, 4, 4)) == 1.0  # box touching every border
    assert energy_pointing_game(heat, (0, 0, 20, 20), image_shape=(40, 40)) == pytest.approx(0.6)
    assert energy_pointing_game(np.zeros((3, 3)), (0, 0, 1, 1)) == 0.0


def test_pointing_games_reject_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        pointing_game(np.zeros((2, 3, 3)), (0, 0, 1, 1))
    with pytest.raises(ValueError, match="shape"):
        energy_pointing_game(np.zeros((3, 3)), (0, 0, 1))
    with pytest.raises(InvalidBoxError):
        pointing_game(np.eye(3), (2, 2, 1, 1))
    with pytest.raises(ValueError, match="NaN"):
        energy_pointing_game(np.full((2, 2), np.nan), (0, 0, 1, 1))


# -- the suite and the registry ---------------------------------------------------------------------------
def test_registry_describes_every_metric():
    assert len(set(METRIC_KEYS)) == len(METRICS)
    assert all(m.label and m.paper and m.doc for m in METRICS)
    assert not metric("deletion").higher_is_better and metric("insertion").higher_is_better
    # 21 points at 224² px and 20 steps: 19 interior + the all-baseline input + the photo itself
    assert [metric(k).forward_passes() for k in ("deletion", "avg_drop", "road_combined", "pointing_game")] \
        == [21, 2, 19, 0]
    with pytest.raises(ValueError, match="unknown faithfulness metric"):
        metric("accuracy")


@pytest.mark.parametrize("keys", [("deletion", "insertion"), ("deletion", "insertion_zero"), ("avg_drop",),
                                  ("road_combined", "road_morf"), tuple(METRIC_KEYS), ("pointing_game",)])
def test_forward_passes_are_what_the_suite_spends(keys):
    score = CountingScore()
    rng = np.random.default_rng(0)
    inputs = rng.random((2, 6, 6, 3)).astype(np.float32)
    maps = rng.random((2, 3, 3)).astype(np.float32)
    boxes = [(0, 0, 3, 3), (1, 1, 6, 6)]
    result = evaluate_faithfulness(inputs, maps, score, keys, boxes, [(6, 6)] * 2, steps=5, chunk=7)
    assert score.rows == 2 * forward_passes(keys, pixels=36, steps=5)
    assert score.largest <= 7  # never more inputs per forward pass than the chunk
    assert all(result[key].shape == (2,) for key in keys)


def test_suite_needs_boxes_for_the_pointing_games():
    with pytest.raises(ValueError, match="box"):
        evaluate_faithfulness(ones(), np.zeros((1, 2, 2)), CountingScore(), ("pointing_game",))


def test_suite_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        evaluate_faithfulness(np.ones((2, 2, 3)), np.zeros((1, 2, 2)), CountingScore(), ("avg_drop",))
    with pytest.raises(ValueError, match="2 maps for 1 photos"):
        evaluate_faithfulness(ones(), np.zeros((2, 2, 2)), CountingScore(), ("avg_drop",))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_faithfulness(ones(), np.full((1, 2, 2), np.nan), CountingScore(), ("avg_drop",))
    with pytest.raises(ValueError, match="no faithfulness metric"):
        evaluate_faithfulness(ones(), np.zeros((1, 2, 2)), CountingScore(), ())
    with pytest.raises(ValueError, match="chunk"):
        evaluate_faithfulness(ones(), np.zeros((1, 2, 2)), CountingScore(), ("avg_drop",), chunk=0)


# -- the real model ---------------------------------------------------------------------------------------
def test_engine_score_function_on_the_offline_model(offline_explainer, offline_bundle):
    from core.paths import ASSETS_DIR
    from core.preprocessing import preprocess

    photo = cv2.cvtColor(cv2.imread(str(ASSETS_DIR / "sample_car.jpg")), cv2.COLOR_BGR2RGB)  # 900×600
    raw = offline_explainer.explain([photo], ("gradcam",), layer="out_relu")[0]
    score = explainer_score_fn(offline_explainer, raw.class_weights[None])
    inputs = model_inputs(offline_explainer, [photo])
    resized = cv2.resize(photo, (224, 224), interpolation=cv2.INTER_AREA)
    assert np.array_equal(inputs, preprocess(resized[None], offline_bundle.preprocessing).numpy())
    result = evaluate_faithfulness(inputs, raw.maps[("gradcam", "out_relu")][None], score,
                                   ("deletion", "insertion", "avg_drop"), steps=4)  # 8 forward passes
    assert result["original_score"][0] == pytest.approx(raw.probabilities[raw.predicted_class], abs=1e-5)
    assert result["deletion_curve"][0, 0] == result["insertion_curve"][0, -1] == result["original_score"][0]
    assert 0 <= result["deletion"][0] < result["insertion"][0] <= 1
    with pytest.raises(ValueError, match="class_weights"):
        explainer_score_fn(offline_explainer, np.ones((1, 3)))
