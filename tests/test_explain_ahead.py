"""Explore explains the next photo in the background; 'Next' then shows it without running the network."""

from __future__ import annotations

from tests.apptest_helpers import TIMEOUT, assert_clean, captions
from tests.conftest import PROJECT_ROOT


def test_next_photo_was_explained_ahead(drawn_dataset, monkeypatch, offline_bundle):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CARS196_DIR", str(drawn_dataset))
    app = AppTest.from_file(str(PROJECT_ROOT / "pages/1_Explore.py"), default_timeout=TIMEOUT)
    app.run()
    assert_clean(app)
    assert not any("(cached)" in c for c in captions(app) if c.startswith("network"))
    ahead = app.session_state["explanations_ahead"]
    assert len(ahead) == 1  # only the next photo, only this session's
    (future,) = ahead.values()
    record = future.result(timeout=TIMEOUT).photo
    assert record.class_name == "Drawn Saloon Right"  # photo 2 of the drawn dataset: the mirrored copy
    app.button[1].click().run()  # Next
    assert_clean(app)
    assert any("Ground truth:** Drawn Saloon Right" in m.value for m in app.markdown)
    assert any("(cached)" in c for c in captions(app) if c.startswith("network")), captions(app)
