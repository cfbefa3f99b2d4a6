"""The app's pages, declared once: the entry point's navigation, and the way a deep link gets into it.

The page scripts live in ``pages/``, which Streamlit also knows as its legacy multipage layout: until some
session has run the entry point's ``st.navigation``, a server serves ``pages/*.py`` on its own, with a
navigation built from file names ("dashboard, Explore, Upload…", no Home, no icons). Opening a page's
address on a freshly started server (a bookmark) lands there. :func:`enter_through_navigation` notices it
and declares the real navigation — which, as documented, switches the whole server to ``st.navigation``
for every session — then reruns, so the same page is drawn again through the entry point.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["PAGE_FILES", "app_pages", "enter_through_navigation"]

PAGE_FILES = (
    ("pages/1_Explore.py", "Explore", ":material/photo_library:"),
    ("pages/2_Upload.py", "Upload", ":material/upload:"),
    ("pages/3_Layers.py", "Layers", ":material/layers:"),
    ("pages/4_Evaluate.py", "Evaluate", ":material/analytics:"),
    ("pages/5_How_it_works.py", "How it works", ":material/account_tree:"),
    ("pages/6_Compare.py", "Compare", ":material/grid_view:"),
)
"""(script, title, icon) of every page but Home, in menu order; the address is the title with
underscores for spaces (``/How_it_works``)."""


def app_pages(home) -> list:
    """The navigation's pages: ``home`` (a function drawing the home page) first, then :data:`PAGE_FILES`."""
    return [st.Page(home, title="Home", icon=":material/home:", default=True)] + [
        st.Page(script, title=title, icon=icon, url_path=title.replace(" ", "_"))
        for script, title, icon in PAGE_FILES]


def _home_not_drawn() -> None:
    """Stands in for the home page while the navigation is declared from a page; never drawn."""


def _served_as_legacy_pages_folder() -> bool:
    # Streamlit's own switch (set on start when ``pages/`` exists, cleared by st.navigation). Read
    # defensively: should it move, deep links show the legacy menu again and tests/test_browser.py fails.
    from streamlit.runtime.pages_manager import PagesManager

    return bool(getattr(PagesManager, "uses_pages_directory", False))


def enter_through_navigation() -> None:
    """On a page run by the legacy ``pages/`` mechanism, switch to the entry point's navigation and rerun
    (the rerun keeps the page: a page's identity is its address); otherwise nothing."""
    if _served_as_legacy_pages_folder():
        st.navigation(app_pages(_home_not_drawn), position="hidden")
        st.rerun()
