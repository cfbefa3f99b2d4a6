"""Streamlit must not clear the Keras session after each run (it made every τ redraw pay two full garbage
collections and a reset kernel cache), and the config must not force a collection either."""

from __future__ import annotations

import tomllib

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT
from ui import run_hygiene

_SCRIPT = """
import streamlit as st
from ui.run_hygiene import keep_keras_session
if {keep}:
    keep_keras_session()
st.write("ran")
"""


@pytest.fixture
def clear_session_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(1))
    # every test starts from Streamlit's own clean-up, whatever an earlier test in this process did
    monkeypatch.setattr(script_runner, "_clean_problem_modules", run_hygiene._ORIGINAL)
    return calls


def _run(keep: bool) -> AppTest:
    app = AppTest.from_string(_SCRIPT.format(keep=keep), default_timeout=60)
    app.run()
    assert not app.exception
    return app


def test_streamlit_clears_keras_after_a_run_unless_told_not_to(clear_session_calls):
    _run(keep=False)
    assert clear_session_calls, "Streamlit no longer clears Keras: ui/run_hygiene.py can go"
    clear_session_calls.clear()
    _run(keep=True)
    _run(keep=True)
    assert clear_session_calls == []


def test_the_hook_exists_on_this_streamlit():
    assert run_hygiene._ORIGINAL is not None
    assert run_hygiene.keep_keras_session() is True


def test_matplotlib_figures_are_still_closed(clear_session_calls):
    pyplot = pytest.importorskip("matplotlib.pyplot")
    pyplot.figure()
    _run(keep=True)
    assert pyplot.get_fignums() == []


def test_config_turns_off_the_forced_collection():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
