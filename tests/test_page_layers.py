"""Layers page: a Grad-CAM grid over the model's layers, one network pass."""

from __future__ import annotations

from tests.apptest_helpers import assert_clean, run_page


def test_grid_shows_one_panel_per_layer_and_follows_the_selection(offline_bundle):
    app = run_page("pages/3_Layers.py")
    titles = [m.value for m in app.markdown if m.value.startswith("**Grad-CAM")]
    assert len(titles) == len(offline_bundle.suggested_layers)
    assert titles[0] == "**Grad-CAM · `out_relu`** (7×7)"
    assert titles[-1].endswith("(112×112)")  # the shallowest suggested layer
    app.multiselect(key=f"grid_layers_{offline_bundle.name}").set_value(["out_relu", "block_12_add"]).run()
    assert_clean(app)
    titles = [m.value for m in app.markdown if m.value.startswith("**Grad-CAM")]
    assert titles == ["**Grad-CAM · `out_relu`** (7×7)", "**Grad-CAM · `block_12_add`** (14×14)"]
    assert any("2 layers in one pass" in c.value for c in app.caption)
    assert len(app.get("image")) == 2


def test_empty_layer_selection_asks_for_a_layer(offline_bundle):
    app = run_page("pages/3_Layers.py")
    app.multiselect(key=f"grid_layers_{offline_bundle.name}").set_value([]).run()
    assert_clean(app)
    assert any("at least one layer" in i.value for i in app.info)


def test_fullgrad_shows_one_map_and_says_it_does_not_depend_on_the_layer(offline_bundle):
    app = run_page("pages/3_Layers.py")
    app.sidebar.selectbox(key="layer_method").set_value("fullgrad").run()
    assert_clean(app)
    titles = [m.value for m in app.markdown if m.value.startswith("**FullGrad")]
    assert titles == ["**FullGrad · `input`** (224×224)"]
    assert any("does not depend on the layer" in i.value for i in app.info)


def test_network_time_is_a_warm_call_and_the_compiling_first_run_is_named(offline_bundle):
    import re

    app = run_page("pages/3_Layers.py")
    app.multiselect(key=f"grid_layers_{offline_bundle.name}").set_value(["block_9_add", "block_4_add"]).run()
    assert_clean(app)
    caption = next(c.value for c in app.caption if "layers in one pass" in c.value)
    warm_ms = float(re.search(r"network ([\d,]+) ms", caption).group(1).replace(",", ""))
    first_s = float(re.search(r"the first run took ([\d,.]+) s", caption).group(1).replace(",", ""))
    assert warm_ms < first_s * 1000 / 2  # a new pair of layers traces its graph once; the time shown is warm
    app.multiselect(key=f"grid_layers_{offline_bundle.name}").set_value(["out_relu"]).run()
    app.multiselect(key=f"grid_layers_{offline_bundle.name}").set_value(["block_9_add", "block_4_add"]).run()
    caption = next(c.value for c in app.caption if "layers in one pass" in c.value)
    assert "first run" not in caption  # the same layers again: nothing compiles
