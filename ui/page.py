"""The frame every page shares: config, model picker and the model's status line."""

from __future__ import annotations

import streamlit as st

from ui import state
from ui.controls import model_picker
from ui.models import LoadedModel, get_model
from ui.navigation import enter_through_navigation
from ui.run_hygiene import keep_keras_session


def start_page(title: str, icon: str = "🚗") -> LoadedModel | None:
    """Page config, kept choices, title and the sidebar model picker; returns the loaded model or None
    (error shown)."""
    keep_keras_session()  # cached models stay cached: no clear_session after each run
    enter_through_navigation()  # a bookmarked page on a fresh server: draw it through the entry point
    st.set_page_config(page_title=f"{title} · CAM Explorer", page_icon=icon, layout="wide")
    state.sync()  # before any widget: choices made on other pages come back
    st.title(title)
    loaded = get_model(model_picker())
    if loaded is not None:
        st.sidebar.caption(f"In use: **{loaded.bundle.name}** · {loaded.choice.summary}",
                           help=loaded.choice.reason)
    return loaded
