"""Streamlit helpers shared by the dashboard pages: cached loaders, sidebar controls and renderers.

Kept out of ``core`` (which never imports Streamlit) and out of ``pages/`` (every file there is a page).
"""
