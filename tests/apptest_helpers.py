"""Helpers for Streamlit AppTest: run a page with a generous timeout and read what it shows."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT

TIMEOUT = 180  # importing TensorFlow and loading a model take far longer than AppTest's 3 s default


def run_page(name: str) -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / name), default_timeout=TIMEOUT)
    app.run()
    assert_clean(app)
    return app


def assert_clean(app: AppTest) -> None:
    """No exception element (a traceback) on the page."""
    assert not app.exception, [e.value for e in app.exception]


def captions(app: AppTest) -> list[str]:
    return [c.value for c in app.caption]


def boxes_shown(app: AppTest) -> list[tuple[float, ...]]:
    """Every 'Box (x1, y1, x2, y2) = (…)' caption on the page, as numbers."""
    found = []
    for text in captions(app):
        match = re.search(r"Box \(x1, y1, x2, y2\) = \(([^)]*)\)", text)
        if match:
            found.append(tuple(float(v) for v in match.group(1).split(",")))
    return found


def metrics(app: AppTest) -> list[float]:
    return [float(m.value) for m in app.metric]


def live_overlays(app: AppTest) -> list[dict]:
    """The data of every live overlay (``ui.live_overlay``) on the page: its blend, boxes and sweep."""
    return [json.loads(e.proto.json) for e in app.get("bidi_component")
            if e.proto.component_name == "cam_explorer_live_overlay"]
