"""A real browser on How it works and Compare: the stages render, moving τ changes the mask stage without
an error, and the Compare grid has a cell per method. Server and browser as tests/test_browser.py."""

from __future__ import annotations

from tests.test_browser import (
    _assert_no_errors,
    _open,
    _status_idle,
    _wait_for_images,
    browser,
    server,
    shots,
)

__all__ = ["browser", "server", "shots"]  # fixtures, re-used


def _kept_share(page) -> str:
    return page.get_by_text("Pixels at least τ times").first.inner_text()


def test_moving_tau_changes_the_mask_stage(server, browser, shots):
    page = _open(browser, f"{server}/How_it_works")
    page.get_by_text("10 · IoU with the ground truth").wait_for(timeout=180_000)
    _wait_for_images(page, 6)
    _status_idle(page)
    _assert_no_errors(page)
    before = _kept_share(page)
    slider = page.locator('input[type=range][aria-label="Box threshold τ"]')
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    _status_idle(page)
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
        ".some(e => e.innerText.startsWith('Pixels at least') && e.innerText !== before)", arg=before,
        timeout=60_000)
    _assert_no_errors(page)
    after = _kept_share(page)
    share = lambda text: float(text.split("kept: ")[1].split("%")[0])  # noqa: E731
    assert share(after) < share(before), (before, after)
    page.screenshot(path=shots / "how_it_works.png")
    page.close()


def test_compare_shows_a_cell_per_method(server, browser, shots):
    from core.methods import METHODS

    page = _open(browser, f"{server}/Compare")
    count = sum(m.one_pass for m in METHODS.values())
    _wait_for_images(page, count)
    _status_idle(page)
    _assert_no_errors(page)
    assert page.get_by_text(f"{count} methods ·").count() == 1
    page.screenshot(path=shots / "compare.png")
    page.close()


def test_moving_the_layer_slider_moves_every_stage(server, browser, shots):
    page = _open(browser, f"{server}/How_it_works")
    page.get_by_text("10 · IoU with the ground truth").wait_for(timeout=180_000)
    _status_idle(page)
    stage = "turns the photo into feature maps"
    before = page.get_by_text(stage).first.inner_text()
    assert "out_relu" in before and "7×7" in before
    slider = page.locator('input[type=range][aria-label^="Layer"]')
    slider.focus()
    page.keyboard.press("ArrowRight")  # one step shallower: block_12_add, 14×14 cells
    page.wait_for_function(
        "(stage) => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
        ".some(e => e.innerText.includes(stage) && e.innerText.includes('block_12_add'))", arg=stage,
        timeout=180_000)
    _status_idle(page)
    _assert_no_errors(page)
    after = page.get_by_text(stage).first.inner_text()
    assert "14×14" in after, after
    assert page.get_by_text("10 · IoU with the ground truth").count() == 1  # every stage still drawn
    page.screenshot(path=shots / "how_it_works_layer.png")
    page.close()


def test_fullgrads_long_formulas_fit_their_column(server, browser, shots):
    page = _open(browser, f"{server}/How_it_works")
    page.get_by_text("10 · IoU with the ground truth").wait_for(timeout=180_000)
    _status_idle(page)
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text="Method").first.click()
    page.get_by_role("option", name="FullGrad").first.click()
    page.get_by_text("The terms that matter most").wait_for(timeout=180_000)
    page.get_by_text("10 · IoU with the ground truth").wait_for(timeout=180_000)
    _status_idle(page)
    _assert_no_errors(page)
    widths = page.evaluate("[...document.querySelectorAll('.katex-display')]"
                           ".map(e => [e.scrollWidth, e.clientWidth])")
    assert len(widths) >= 8, widths
    # one line, FullGrad's sum ran 615 px into a 368 px column (cut off); KaTeX's rounding leaves ≤ 2 px
    assert all(scroll <= client + 4 for scroll, client in widths), widths
    page.get_by_text("4 · The sum of the terms").scroll_into_view_if_needed()
    page.screenshot(path=shots / "how_it_works_fullgrad.png")
    page.close()
