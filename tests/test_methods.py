"""Every registered method against a known answer: analytic identities at a GAP + Dense layer, closed
forms, the principal component, and perturbation methods on a tiny model whose channel effects are known."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest

from core.cam import Explainer, RunOptions, Target
from core.methods import COST_CLASSES, INPUT, METHODS, PerturbationContext, Stopped, fuse_layer_maps, method, resolve
from core.methods.noise import standard_normal
from core.methods.noisy import noisy_copies, smooth_gradcam_plus_plus
from core.methods.perturbation import (ablation_cam, integration_coefficients, interpolation_matrix, is_cam,
                                       score_cam, ss_cam)
from core.model_spec import inspect_model
from tests.conftest import tiny_cam_model

ONE_PASS = tuple(k for k, m in METHODS.items() if m.one_pass)


def _bundle(model, preprocessing="unit"):
    return inspect_model(model, name="tiny", source="test", preprocessing=preprocessing)


def _features_and_head(model, photo):
    x = photo[None].astype(np.float32) / 255.0
    features = keras.Model(model.input, model.get_layer("features").output)(x).numpy()[0]
    kernel, bias = (w.numpy() for w in model.get_layer("classifier").weights)
    return features, kernel, bias


def _photo(size=16, seed=3):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _proportional(a, b):
    """True when a = s·b for some s > 0 (both non-trivial)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    scale = (a @ b) / (b @ b)
    return scale > 0 and np.allclose(a, scale * b, rtol=1e-4, atol=1e-6 * np.abs(a).max())


# -- the registry ------------------------------------------------------------------------------------------
def test_every_method_documents_itself_and_states_its_cost():
    for key, entry in METHODS.items():
        assert entry.key == key and entry.label and entry.paper and entry.doc.strip()
        assert entry.cost in COST_CLASSES
        assert entry.one_pass == (entry.cost == "one pass")
        assert (entry.samples > 0) == (entry.cost in ("channels × samples", "samples"))
    assert len(METHODS) >= 12
    assert not METHODS["eigencam"].uses_class and METHODS["gradcam"].uses_class
    assert "slow" in METHODS["scorecam"].menu_label and "slow" not in METHODS["layercam"].menu_label
    assert METHODS["sscam"].menu_label == "SS-CAM (very slow: 4 passes per channel)"
    assert METHODS["iscam"].menu_label == "IS-CAM (very slow: 4 passes per channel)"
    assert METHODS["smoothgradcampp"].menu_label == "Smooth Grad-CAM++ (4 noisy passes)"
    with pytest.raises(ValueError, match="sample count"):
        type(METHODS["sscam"])("x", "X", "perturbation", score_cam, "p", cost="channels × samples")


def test_aliases_resolve_and_unknown_names_are_clear():
    assert resolve("both") == ("cam", "gradcam")
    assert resolve("both", cam_available=False) == ("gradcam",)
    assert "cam" not in resolve("all", cam_available=False)
    assert set(resolve("fast")) == set(ONE_PASS)
    assert resolve("layercam,gradcam,layercam") == ("layercam", "gradcam")
    with pytest.raises(ValueError, match="unknown method 'gradcamm'"):
        resolve("gradcamm")
    with pytest.raises(ValueError, match="no method"):
        resolve(" , ")


def test_normalisation_is_the_methods_own_and_the_original_recipe_overrides_it():
    assert method("cam").normalization("paper") == (False, "minmax")
    assert method("gradcam").normalization("paper") == (True, "max")
    assert method("layercam").normalization("original") == (False, "max")


# -- analytic identities at the layer feeding GAP + Dense ----------------------------------------------------
def test_cam_gradcam_hirescam_xgradcam_coincide_at_a_gap_dense_layer(tiny_model):
    """score = Σ_k W[k,c] mean(A_k) + b ⇒ g_k = W[k,c]/Z everywhere: Grad-CAM's and XGrad-CAM's weights are
    W[k,c]/Z and HiResCAM's map is Σ_k W[k,c] A_k / Z: all CAM up to a positive scale."""
    photo = _photo()
    raw = Explainer(_bundle(tiny_model)).explain([photo], ("cam", "gradcam", "hirescam", "xgradcam"),
                                                  target=Target.of_class(1))[0]
    features, kernel, _ = _features_and_head(tiny_model, photo)
    cam = features @ kernel[:, 1]
    assert np.allclose(raw.maps[("cam", "features")], cam, atol=1e-5)
    for key in ("gradcam", "hirescam", "xgradcam"):
        assert _proportional(raw.maps[(key, "features")], cam), key


def test_gradcampp_layercam_and_elementwise_match_their_closed_forms(tiny_model):
    photo = _photo(seed=5)
    raw = Explainer(_bundle(tiny_model)).explain(
        [photo], ("gradcampp", "layercam", "gradcam_elementwise"), target=Target.of_class(2))[0]
    features, kernel, _ = _features_and_head(tiny_model, photo)
    z = features.shape[0] * features.shape[1]
    g = kernel[:, 2] / z  # the gradient of the logit, the same at every position
    sums = features.sum(axis=(0, 1))
    # Grad-CAM++: a = g² / (2g² + S g³) at every position, α = Z · a · ReLU(g)
    alpha = np.where(g != 0, z * g**2 / (2 * g**2 + sums * g**3 + 1e-6) * np.maximum(g, 0), 0)
    assert np.allclose(raw.maps[("gradcampp", "features")], features @ alpha, rtol=1e-4, atol=1e-6)
    assert np.allclose(raw.maps[("layercam", "features")], features @ np.maximum(g, 0), rtol=1e-4, atol=1e-7)
    assert np.allclose(raw.maps[("gradcam_elementwise", "features")],
                       np.maximum(features * g, 0).sum(-1), rtol=1e-4, atol=1e-7)


def test_eigencam_is_the_first_principal_component_with_a_fixed_sign(tiny_model):
    photo = _photo(seed=7)
    # frozen before the first call: a background twin taking over between the two calls changes the last bits
    explainer = Explainer(_bundle(tiny_model), freeze="now")
    first = explainer.explain([photo], ("eigencam",), target=Target.of_class(0))[0]
    other = explainer.explain([photo], ("eigencam",), target=Target.of_class(2))[0]
    features, _, _ = _features_and_head(tiny_model, photo)
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    centred = flat - flat.mean(axis=0)
    projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    if projection @ centred.sum(axis=1) < 0:
        projection = -projection
    got = first.maps[("eigencam", "features")]
    assert np.allclose(got.ravel(), projection, atol=1e-4 * np.abs(projection).max())
    assert np.array_equal(got, other.maps[("eigencam", "features")])  # the class plays no part


def test_eigen_smoothing_of_a_rank_one_map_is_the_map_itself():
    """With one channel, the weighted activations are rank one: their principal component is the centred
    map, so eigen-smoothing only removes the mean."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(2, name="classifier")(keras.layers.GlobalAveragePooling2D()(x))
    bundle = _bundle(keras.Model(inputs, outputs))
    photo = _photo(12, seed=9)
    explainer = Explainer(bundle)
    plain = explainer.explain([photo], ("gradcam",), target=Target.of_class(0))[0].maps[("gradcam", "features")]
    smooth = explainer.explain([photo], ("gradcam",), target=Target.of_class(0),
                               options=RunOptions(eigen_smooth=True))[0].maps[("gradcam", "features")]
    centred = plain - plain.mean()
    assert np.allclose(np.abs(smooth), np.abs(centred), atol=1e-5 * np.abs(centred).max())


def test_every_one_pass_method_runs_on_a_batch_and_any_layer(tiny_model):
    bundle = _bundle(tiny_model)
    photos = [_photo(16, seed=s) for s in range(3)]
    methods = tuple(k for k in ONE_PASS if k != "cam")
    together = Explainer(bundle).explain(photos, methods, layer="conv_a", target=Target.of_class(1))
    for key in methods:
        alone = Explainer(bundle).explain(photos, (key,), layer="conv_a", target=Target.of_class(1))
        # FullGrad belongs to no layer: its map is at the input's 16×16
        pair, shape = ((key, INPUT), (16, 16)) if METHODS[key].kind == "input" else ((key, "conv_a"), (8, 8))
        for a, b in zip(together, alone):
            assert a.maps[pair].shape == shape
            assert np.allclose(a.maps[pair], b.maps[pair], atol=1e-5 * np.abs(b.maps[pair]).max()), key


# -- perturbation methods on a model with known channel effects ----------------------------------------------
def _channel_model():
    """Input → 'features' = identity 1×1 conv on 3 channels → GAP → Dense with logit_c = Σ_k W[k, c] m_k."""
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="features")
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(conv(inputs))
    head = keras.layers.Dense(2, name="classifier")
    outputs = head(pooled)
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.eye(3, dtype=np.float32)[None, None]])
    head.set_weights([np.array([[2.0, 0.0], [0.5, 0.0], [-1.0, 1.0]], np.float32), np.array([1.0, 0.0], np.float32)])
    return model


def test_ablation_cam_weights_are_each_channels_share_of_the_score():
    """logit = 1 + 2 m0 + 0.5 m1 − m2: zeroing channel k removes W[k] m_k, so α_k = W[k] m_k / logit."""
    model = _channel_model()
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[..., 0], photo[..., 1], photo[..., 2] = 255, 51, 102  # m = (1, 0.2, 0.4) after /255
    raw = Explainer(_bundle(model)).explain([photo], ("ablationcam",), target=Target.of_class(0))[0]
    m = np.array([1.0, 0.2, 0.4])
    logit = 1 + 2 * m[0] + 0.5 * m[1] - m[2]
    alpha = np.array([2 * m[0], 0.5 * m[1], -m[2]]) / logit
    assert np.allclose(raw.maps[("ablationcam", "features")], np.full((8, 8), alpha @ m), atol=1e-5)


def test_score_cam_weights_are_the_softmax_of_masked_scores():
    """Each channel's mask is its min-max scaled map; masking the input keeps only that region. With a
    hand-made score the weights are softmax(score(x·M_k)) over k."""
    acts = np.zeros((2, 2, 3), np.float32)
    acts[0, 0, 0] = 1.0  # channel 0: top-left only
    acts[:, :, 1] = 5.0  # channel 1: constant → the all-zero mask
    acts[1, 1, 2] = 3.0  # channel 2: bottom-right only
    inputs = np.ones((3, 3, 1), np.float32)
    calls = []

    def score(batch):
        calls.append(len(batch))
        return batch.reshape(len(batch), -1).sum(axis=1)  # the mask's total weight

    weights = score_cam(PerturbationContext(inputs, acts, score, None, chunk=2))
    # 2→3 corner-aligned upsampling of a one-hot corner: [[1, .5, 0], [.5, .25, 0], [0, 0, 0]], total 2.25
    expected = np.exp([2.25, 0.0, 2.25]) / np.exp([2.25, 0.0, 2.25]).sum()
    assert np.allclose(weights, expected)
    assert sum(calls) == 3 and max(calls) <= 2  # the constant channel is scored once, chunks of 2
    fast = score_cam(PerturbationContext(inputs, acts, score, None), max_channels=1)
    assert np.count_nonzero(fast) == 1 and np.isclose(fast.sum(), 1.0)


def test_corner_aligned_interpolation_matches_torch_upsampling_bilinear():
    assert np.allclose(interpolation_matrix(2, 3), [[1, 0], [0.5, 0.5], [0, 1]])
    assert np.allclose(interpolation_matrix(7, 224).sum(axis=1), 1.0)
    assert np.allclose(interpolation_matrix(1, 4), 1.0)


def test_slow_methods_report_progress_and_stop_between_chunks():
    acts = np.random.default_rng(0).random((4, 4, 10)).astype(np.float32)
    inputs = np.ones((8, 8, 3), np.float32)
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done >= 4:
            stop.set()

    ctx = PerturbationContext(inputs, acts, lambda b: np.zeros(len(b)), lambda a: np.ones(len(a)),
                              chunk=2, progress=progress, stop=stop)
    with pytest.raises(Stopped):
        score_cam(ctx)
    assert seen == [(2, 10), (4, 10)]
    stop.clear()
    seen.clear()
    assert ablation_cam(PerturbationContext(inputs, acts, None, lambda a: np.ones(len(a)), chunk=5,
                                            progress=lambda d, t: seen.append(d))).shape == (10,)
    assert seen == [5, 10]


def test_ablation_cam_refuses_a_layer_that_is_no_cut_of_the_graph():
    with pytest.raises(ValueError, match="Ablation-CAM needs a layer"):
        ablation_cam(PerturbationContext(np.ones((4, 4, 3), np.float32), np.ones((2, 2, 3), np.float32),
                                         None, None))


def test_perturbation_methods_run_through_the_engine_with_progress(tiny_model):
    seen = []
    raw = Explainer(_bundle(tiny_model)).explain(
        [_photo()], ("gradcam", "scorecam", "ablationcam"), target=Target.of_class(1),
        options=RunOptions(chunk=2, progress=lambda m, d, t: seen.append((m, d, t))))[0]
    for key in ("scorecam", "ablationcam"):
        assert raw.maps[(key, "features")].shape == (8, 8)
    assert ("ablationcam", 4, 4) in seen and any(m == "scorecam" for m, _, _ in seen)


# -- layer fusion ----------------------------------------------------------------------------------------------
def test_layer_fusion_scales_by_tanh_and_takes_the_maximum():
    coarse = np.array([[0.0, 1.0], [0.0, 0.0]])
    fine = np.zeros((4, 4))
    fine[3, 0] = 2.0
    fused = fuse_layer_maps([coarse, fine])
    assert fused.shape == (4, 4)
    assert np.isclose(fused[3, 0], np.tanh(2.0))  # the fine map's peak, normalised to 1, then tanh(2·1)
    assert np.isclose(fused[0, 3], np.tanh(2.0))  # the coarse map's peak cell, upsampled
    with pytest.raises(ValueError):
        fuse_layer_maps([])


def test_fused_layers_through_the_engine_and_perturbation_refuses_fusion(tiny_model):
    explainer = Explainer(_bundle(tiny_model))
    raw = explainer.explain([_photo()], ("layercam",), layer="features+conv_a", target=Target.of_class(0))[0]
    assert raw.maps[("layercam", "features+conv_a")].shape == (8, 8)
    with pytest.raises(ValueError, match="one layer"):
        explainer.check_request(("scorecam",), "features+conv_a")


def test_kpcacam_is_scikit_learns_kernel_pca_up_to_sign(tiny_model):
    decomposition = pytest.importorskip("sklearn.decomposition", reason="scikit-learn comes with the dev setup")
    photo = _photo(seed=11)
    raw = Explainer(_bundle(tiny_model)).explain([photo], ("kpcacam",), target=Target.of_class(0))[0]
    features, _, _ = _features_and_head(tiny_model, photo)
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    reference = decomposition.KernelPCA(n_components=1, kernel="sigmoid").fit_transform(flat - flat.mean(0))[:, 0]
    got = raw.maps[("kpcacam", "features")].ravel()
    assert np.allclose(np.abs(got), np.abs(reference), atol=1e-4 * np.abs(reference).max())


def test_finercam_is_gradcam_of_the_contrast_with_the_nearest_classes():
    """At GAP + Dense, ∂S/∂A_k = Σ_c ∂S/∂z_c W[k, c] / Z: the map is Σ_k α_k A_k with α from the gradient of
    FinerCAM's contrast S(z) = Σ_j p_j (z_c − z_j) / Σ_j p_j (the 3 nearest logits), taken numerically."""
    model = tiny_cam_model(num_classes=6, channels=5)
    photo = _photo(seed=4)
    raw = Explainer(_bundle(model)).explain([photo], ("finercam",), target=Target.of_class(2))[0]
    features, kernel, bias = _features_and_head(model, photo)
    z = features.mean(axis=(0, 1)).astype(np.float64) @ kernel + bias
    nearest = [j for j in np.argsort(np.abs(z - z[2]), kind="stable") if j != 2][:3]

    def contrast(logits):
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return sum(p[j] * (logits[2] - logits[j]) for j in nearest) / sum(p[j] for j in nearest)

    step = 1e-5
    grad = np.array([(contrast(z + step * e) - contrast(z - step * e)) / (2 * step) for e in np.eye(len(z))])
    alpha = kernel @ grad / (features.shape[0] * features.shape[1])
    assert np.allclose(raw.maps[("finercam", "features")], features @ alpha, rtol=1e-3, atol=1e-6)


# -- SS-CAM and IS-CAM: Score-CAM's masks, averaged over noisy or scaled copies ---------------------------------
def _three_channels():
    """The Score-CAM test's layer: channel 0 top-left, 1 constant (the all-zero mask), 2 bottom-right."""
    acts = np.zeros((2, 2, 3), np.float32)
    acts[0, 0, 0], acts[:, :, 1], acts[1, 1, 2] = 1.0, 5.0, 3.0
    return acts


def _mask_total(batch):
    return batch.reshape(len(batch), -1).sum(axis=1)


def test_ss_cam_without_noise_is_score_cam_and_with_noise_averages_the_seeded_draws():
    acts, inputs = _three_channels(), np.ones((3, 3, 1), np.float32)
    calls = []

    def score(batch):
        calls.append(len(batch))
        return _mask_total(batch)

    ctx = PerturbationContext(inputs, acts, score, None, chunk=4, seed=5)
    assert np.array_equal(ss_cam(ctx, samples=3, std=0.0), score_cam(ctx))
    calls.clear()
    weights = ss_cam(ctx, samples=3, std=2.0)
    assert sum(calls) == 3 * 3 and max(calls) <= 4  # the constant channels share one mask, hence one draw
    # the score is linear in the mask: each sample adds 2 · Σ δ_ik; the constant channel draws as channel 1
    clean = np.array([2.25, 0.0, 2.25])
    noise = np.array([[2.0 * standard_normal((3, 3), 5, i, k).sum() for k in range(3)] for i in range(3)])
    expected = np.exp(clean + noise.mean(axis=0))
    assert np.allclose(weights, expected / expected.sum(), rtol=1e-5)


def test_ss_cam_noise_is_standard_normal_and_independent_across_samples_and_channels():
    draws = np.stack([standard_normal((32, 32), 0, i, k).ravel() for i in range(4) for k in range(4)])
    assert abs(draws.mean()) < 0.03 and abs(draws.std() - 1.0) < 0.03  # 16,384 draws: 4 standard errors
    correlation = np.corrcoef(draws)[np.triu_indices(len(draws), 1)]
    assert np.abs(correlation).max() < 0.15  # 1,024 draws a pair, 120 pairs: the largest within 5 standard errors
    assert np.array_equal(standard_normal((3,), 0, 1, 2), standard_normal((3,), 0, 1, 2))
    assert not np.array_equal(standard_normal((3,), 0, 1, 2), standard_normal((3,), 0, 2, 1))


def test_is_cam_averages_the_scores_along_torchcams_cumulative_path():
    """A score linear in the input: s(c · X ⊙ M_k) = c · s(X ⊙ M_k), so IS-CAM's weights are Score-CAM's
    scores times the mean coefficient, softmaxed; torchcam's coefficients are Σ_{j ≤ i} j / N."""
    assert np.allclose(integration_coefficients(3), [1 / 3, 1.0, 2.0])
    assert np.isclose(integration_coefficients(10)[-1], 5.5)
    acts, inputs = _three_channels(), np.ones((3, 3, 1), np.float32)
    seen = []
    weights = is_cam(PerturbationContext(inputs, acts, _mask_total, None, chunk=4,
                                         progress=lambda d, t: seen.append((d, t))), samples=3)
    expected = np.exp(np.array([2.25, 0.0, 2.25]) * 10 / 9)
    assert np.allclose(weights, expected / expected.sum())
    assert seen == [(4, 9), (8, 9), (9, 9)]  # 3 samples × (2 varying channels + 1 constant), chunks of 4


def _known_effects_photo():
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[:4, :, 0] = 255  # channel 0: the top half
    photo[:, :2, 1] = 102  # channel 1: the left quarter
    photo[5:, 5:, 2] = 204  # channel 2: a bottom-right corner
    return photo


def _masked_logits(photo, scales, noise=None):
    """The channel model's logit 1 + Σ_j W[j] mean(X_j ⊙ M_k) for masked inputs, by hand (features = the
    input, 8×8 → 8×8 interpolation is the identity, so M_k is X_k min-max scaled)."""
    x = photo.astype(np.float64) / 255.0
    w = np.array([2.0, 0.5, -1.0])
    out = np.zeros((len(scales), 3))
    for i, c in enumerate(scales):
        for k in range(3):
            mask = (x[..., k] - x[..., k].min()) / (x[..., k].max() - x[..., k].min() + 1e-8)
            if noise is not None:
                mask = mask + noise(i, k)
            out[i, k] = 1 + w @ (c * x * mask[..., None]).mean(axis=(0, 1))
    return out


def test_is_cam_and_ss_cam_through_the_engine_on_a_model_with_known_channel_effects():
    model = _channel_model()
    photo = _known_effects_photo()
    x = photo.astype(np.float64) / 255.0
    seen = []
    raw = Explainer(_bundle(model)).explain(
        [photo], ("iscam", "sscam"), target=Target.of_class(0),
        options=RunOptions(chunk=5, progress=lambda m, d, t: seen.append((m, d, t))))[0]
    for key, scores in (("iscam", _masked_logits(photo, integration_coefficients(4))),
                        ("sscam", _masked_logits(photo, np.ones(4),
                                                 lambda i, k: 2.0 * standard_normal((8, 8), 0, i, k)))):
        alpha = np.exp(scores.mean(axis=0) - scores.mean(axis=0).max())
        assert np.allclose(raw.maps[(key, "features")], x @ (alpha / alpha.sum()), rtol=1e-4, atol=1e-6), key
        assert (key, 12, 12) in seen  # 4 samples × 3 channels, one count over all of them


# -- Smooth Grad-CAM++: Grad-CAM++ over noisy copies of the photo ----------------------------------------------
def test_smooth_gradcampp_without_noise_is_gradcampp_at_a_middle_layer(tiny_model):
    bundle = _bundle(tiny_model)
    photo = _photo(seed=8)
    explainer = Explainer(bundle)
    plain = explainer.explain([photo], ("gradcampp",), layer="conv_a", target=Target.of_class(1))[0]
    run = explainer.run_preprocessed_batch(photo[None], ("smoothgradcampp",), "conv_a")
    acts, weights = run[-1].numpy()[0], run[2].numpy()[0]
    ctx = explainer.perturbation_context(photo.astype(np.float32) / 255.0, acts, np.eye(3, dtype=np.float32)[1],
                                         "conv_a", "paper", RunOptions(), "smoothgradcampp")
    assert weights.shape == (3,)
    alpha = smooth_gradcam_plus_plus(ctx, samples=3, noise=0.0)
    assert np.allclose(acts @ alpha, plain.maps[("gradcampp", "conv_a")], rtol=1e-4, atol=1e-6)


def test_smooth_gradcampp_averages_the_derivatives_of_the_seeded_noisy_copies(tiny_model):
    """The paper's formula from gradients taken here with a tape of their own, on the same noisy copies:
    D_p = mean of g^p, a = D₂ / (2 D₂ + Σ A · D₃), α = Σ a ReLU(D₁), map = Σ α A of the clean photo."""
    import tensorflow as tf

    photo = _photo(seed=9)
    inputs = photo.astype(np.float32) / 255.0
    capture = keras.Model(tiny_model.input, [tiny_model.get_layer("conv_a").output,
                                             tiny_model.get_layer("gap").output])
    kernel, bias = (w.numpy() for w in tiny_model.get_layer("classifier").weights)
    copies = noisy_copies(inputs, range(5), 0.2, seed=3)
    x = tf.constant(copies)
    with tf.GradientTape() as tape:
        tape.watch(x)
        acts, pooled = capture(x)
        logit = tf.reduce_sum(tf.matmul(pooled, kernel[:, 2:3]) + bias[2])
    g = tape.gradient(logit, acts).numpy().astype(np.float64)
    assert np.abs(g - g[:1]).max() > 1e-3  # the noise changes the gradient at this layer: the test can fail
    clean = capture(inputs[None])[0].numpy()[0].astype(np.float64)
    d1, d2, d3 = g.mean(0), (g ** 2).mean(0), (g ** 3).mean(0)
    a = np.where(d2 != 0, d2 / (2 * d2 + clean.sum(axis=(0, 1)) * d3 + 1e-6), 0.0)
    expected = clean @ (a * np.maximum(d1, 0)).sum(axis=(0, 1))
    explainer = Explainer(_bundle(tiny_model))
    ctx = explainer.perturbation_context(inputs, clean.astype(np.float32), np.eye(3, dtype=np.float32)[2],
                                         "conv_a", "paper", RunOptions(chunk=2), "smoothgradcampp")
    ctx = type(ctx)(**{**ctx.__dict__, "seed": 3})
    got = clean @ smooth_gradcam_plus_plus(ctx, samples=5, noise=0.2)
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-7 * np.abs(expected).max())
    assert np.allclose(noisy_copies(inputs, [0], 0.2, 3)[0] - inputs,
                       0.2 * (inputs.max() - inputs.min()) * standard_normal(inputs.shape, 3, 0))


def test_smooth_gradcampp_reports_progress_stops_and_needs_gradients():
    acts = np.ones((2, 2, 4), np.float32)
    stop = threading.Event()
    seen = []

    def gradients(batch):
        seen.append(len(batch))
        if sum(seen) >= 2:
            stop.set()
        return np.ones((len(batch), 2, 2, 4)), np.ones((len(batch), 2, 2, 4))

    ctx = PerturbationContext(np.zeros((4, 4, 3), np.float32), acts, None, None, chunk=1, stop=stop,
                              gradients=gradients)
    with pytest.raises(Stopped):
        smooth_gradcam_plus_plus(ctx, samples=4)
    assert seen == [1, 1]
    with pytest.raises(ValueError, match="gradients"):
        smooth_gradcam_plus_plus(PerturbationContext(np.zeros((4, 4, 3), np.float32), acts, None, None))


def test_smooth_gradcampp_through_the_engine_with_progress(tiny_model):
    seen = []
    photos = [_photo(seed=s) for s in range(2)]
    explainer = Explainer(_bundle(tiny_model))
    raws = explainer.explain(photos, ("smoothgradcampp", "gradcampp"), layer="conv_a", target=Target.of_class(0),
                             options=RunOptions(chunk=3, progress=lambda m, d, t: seen.append((m, d, t))))
    assert seen == [("smoothgradcampp", 3, 4), ("smoothgradcampp", 4, 4)] * 2
    for raw in raws:
        smooth, plain = raw.maps[("smoothgradcampp", "conv_a")], raw.maps[("gradcampp", "conv_a")]
        assert smooth.shape == plain.shape == (8, 8) and not np.allclose(smooth, plain)
