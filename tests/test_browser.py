"""A real browser on the real server: every page opens, a slider redraws, an upload is explained.

Starts ``streamlit run dashboard.py`` headless on 127.0.0.1 and drives Debian's chromium with Playwright
(never ``playwright install``: it downloads a browser). Screenshots go to ``$CAM_EXPLORER_SCREENSHOTS``
(default: a temporary folder) so a person can look at them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from core.paths import ASSETS_DIR
from tests.conftest import PROJECT_ROOT, make_drawn_dataset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"home": "", "explore": "Explore", "upload": "Upload", "layers": "Layers", "evaluate": "Evaluate"}
ERROR_SELECTORS = ["[data-testid=stException]", "[data-testid=stAlertContentError]"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(folder: Path, env: dict):
    """``streamlit run dashboard.py`` on a free port; yields its address, stops it afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (bash scripts/setup.sh --dev installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    port = _free_port()
    log = open(folder / "streamlit.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=PROJECT_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}, stdout=log,
        stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start within 90 s")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # a loaded machine can take longer to tear TensorFlow down
        process.kill()
        process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, offline_bundle):
    data = make_drawn_dataset(tmp_path_factory.mktemp("data") / "drawn_cars", count=5)
    yield from _start_server(tmp_path_factory.mktemp("server"), {"CARS196_DIR": str(data)})


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("CAM_EXPLORER_SCREENSHOTS") or tempfile.mkdtemp(prefix="cam-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, timeout=120_000)  # the first request of a page waits for TensorFlow's import
    page.wait_for_selector("h1", timeout=120_000)
    return page


_IMAGES = "[data-testid=stImage] img, .cam-live-overlay img"  # the live overlays draw their own images


def _wait_for_images(page, count: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('{_IMAGES}').length >= {count} && "
        f"[...document.querySelectorAll('{_IMAGES}')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=120_000)


def _assert_no_errors(page) -> None:
    page.wait_for_timeout(500)
    for selector in ERROR_SELECTORS:
        assert page.locator(selector).count() == 0, page.locator(selector).first.inner_text()


def _status_idle(page) -> None:
    """Wait until Streamlit finished the current run: no element is stale (greyed out) any more."""
    page.wait_for_timeout(500)
    page.wait_for_function("document.querySelectorAll('[data-stale=true]').length === 0", timeout=120_000)
    page.wait_for_timeout(500)


@pytest.mark.parametrize("name", ["home", "layers", "explore", "evaluate"])
def test_every_page_renders_without_errors(server, browser, shots, name):
    page = _open(browser, f"{server}/{PAGES[name]}")
    if name in ("layers", "explore"):
        _wait_for_images(page, 1 if name == "explore" else 3)
    _status_idle(page)
    _assert_no_errors(page)
    page.screenshot(path=shots / f"{name}.png", full_page=True)
    page.close()


def test_upload_then_slider_redraws(server, browser, shots):
    page = _open(browser, f"{server}/Upload")
    page.set_input_files("input[type=file]", str(ASSETS_DIR / "sample_car.jpg"))
    _wait_for_images(page, 2)
    _status_idle(page)
    _assert_no_errors(page)
    before = page.get_by_text("Box (x1, y1, x2, y2)").first.inner_text()
    slider = page.locator('input[type=range][aria-label="Box threshold τ"]')
    slider.focus()
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    _status_idle(page)
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
        ".some(e => e.innerText.startsWith('Box (x1') && e.innerText !== before)", arg=before, timeout=60_000)
    _assert_no_errors(page)
    page.screenshot(path=shots / "upload.png", full_page=True)
    page.close()


def test_bad_upload_shows_a_message_not_a_traceback(server, browser, tmp_path):
    bad = tmp_path / "report.jpg"
    bad.write_bytes(b"%PDF-1.7 this is not a photo")
    page = _open(browser, f"{server}/Upload")
    page.set_input_files("input[type=file]", str(bad))
    page.wait_for_selector("[data-testid=stAlertContentError]", timeout=60_000)
    assert "PDF" in page.locator("[data-testid=stAlertContentError]").first.inner_text()
    assert page.locator("[data-testid=stException]").count() == 0
    page.close()


def test_parallel_sessions_get_their_own_results(server, browser, tmp_path):
    """Three browser sessions upload different photos at once; each sees the box of its own photo."""
    import cv2

    image = cv2.imread(str(ASSETS_DIR / "sample_car.jpg"))
    variants = {"left": image, "right": cv2.flip(image, 1), "small": cv2.resize(image, (400, 260))}
    pages = {}
    for name, picture in variants.items():
        path = tmp_path / f"{name}.jpg"
        cv2.imwrite(str(path), picture)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{server}/Upload", timeout=120_000)
        page.wait_for_selector("h1", timeout=120_000)
        pages[name] = (page, path)
    for page, path in pages.values():  # start all uploads before waiting for any result
        page.set_input_files("input[type=file]", str(path))
    boxes = {}
    for name, (page, _) in pages.items():
        _wait_for_images(page, 2)
        _status_idle(page)
        _assert_no_errors(page)
        text = page.get_by_text("Box (x1, y1, x2, y2)").first.inner_text()
        boxes[name] = [float(v) for v in text.split("(")[2].split(")")[0].split(",")]
        assert name + ".jpg" in page.locator("h2").first.inner_text()
        page.context.close()
    centre = {name: (box[0] + box[2]) / 2 for name, box in boxes.items()}
    assert boxes["small"][2] <= 400 and boxes["left"][2] > 400  # each session got its own photo's size
    assert abs((centre["left"] + centre["right"]) - 800) < 60, boxes  # the mirrored photo's box is mirrored


def _shown_photo(page) -> str:
    """The id of the photo the Explore page shows (its caption reads "<id> · <width>×<height>")."""
    return page.locator("[data-testid=stImageCaption]").first.inner_text().split(" · ")[0]


def test_five_tabs_browse_explore_at_once_and_each_sees_its_own_photos(server, browser):
    """Five sessions at once, each on its own photo, then each clicks 'Next' at the same moment: every tab
    answers, with its own next photo (the look-ahead of one session never lands in another), and the
    overlays' boxes are those of that photo (the odd photos are mirrored: their boxes are too)."""
    tabs = []
    for n in range(5):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{server}/Explore", timeout=120_000)
        tabs.append(page)
    for n, page in enumerate(tabs):
        page.wait_for_selector("h1", timeout=120_000)
        field = page.get_by_label("Photo (1–5)")
        field.fill(str(n + 1))
        field.press("Enter")
    for n, page in enumerate(tabs):
        page.wait_for_function(f"document.querySelector('[data-testid=stImageCaption]')?.innerText.includes('{n:05d}')",
                               timeout=180_000)
        _status_idle(page)
    for page in tabs:  # all at once
        page.get_by_role("button", name="Next ▶").click()
    shown = {}
    for n, page in enumerate(tabs):
        expected = f"{(n + 1) % 5:05d}"
        page.wait_for_function(
            f"document.querySelector('[data-testid=stImageCaption]')?.innerText.includes('{expected}')",
            timeout=180_000)
        _status_idle(page)
        _assert_no_errors(page)
        assert expected in _shown_photo(page)
        boxes = [[float(v) for v in t.split("(")[2].split(")")[0].split(",")]
                 for t in page.get_by_text("Box (x1, y1, x2, y2)").all_inner_texts()]
        assert boxes
        shown[expected] = boxes
    for page in tabs:
        page.context.close()
    plain = [shown[f"{i:05d}"] for i in (0, 2, 4)]
    mirrored = [shown[f"{i:05d}"] for i in (1, 3)]
    assert plain[0] == plain[1] == plain[2] and mirrored[0] == mirrored[1]  # same photo, same boxes
    for box, flipped in zip(plain[0], mirrored[0]):  # each method's box, mirrored with its photo
        assert abs((box[0] + box[2]) / 2 + (flipped[0] + flipped[2]) / 2 - 800) < 60, (box, flipped)


def test_explore_report_downloads_and_opens_offline(server, browser, tmp_path):
    """The one-click report: the HTML downloaded from the Explore page shows the page's IoU, every image
    decodes, and opening it fetches nothing."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(f"{server}/Explore", timeout=120_000)
    page.wait_for_selector("h1", timeout=120_000)
    _wait_for_images(page, 2)
    _status_idle(page)
    shown = [e.inner_text() for e in page.locator("[data-testid=stMetricValue]").all()]
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Report (HTML)").click()
    path = tmp_path / "report.html"
    download.value.save_as(str(path))
    page.close()
    report = browser.new_page()
    requests = []
    report.on("request", lambda r: requests.append(r.url))
    report.goto(path.as_uri())
    sizes = report.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
    ious = report.evaluate("[...document.querySelectorAll('figure')].map(f => Number(f.dataset.iou).toFixed(3))")
    report.close()
    assert sizes and all(s > 0 for s in sizes)
    assert sorted(ious) == sorted(shown)  # the page's metrics, to the digit
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []


_LIVE_STATE = """[...document.querySelectorAll('.cam-live-overlay')].map(r => ({
  source: r.dataset.source, tau: r.dataset.tau, serverTau: r.dataset.serverTau, sweep: r.dataset.sweep,
  boxes: [...r.querySelectorAll('polygon')].map(p => p.getAttribute('points'))}))"""

_RECORD_SOURCES = """() => { window.__liveSeen = [];
  new MutationObserver(() => document.querySelectorAll('.cam-live-overlay').forEach(r =>
    window.__liveSeen.push(`${r.dataset.source} ${r.dataset.tau}`)))
  .observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-tau', 'data-source']}); }"""


def _points(polygon: str) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in pair.split(",")) for pair in polygon.split()]


def test_explore_tau_move_redraws_every_overlay(server, browser):
    """A τ move redraws every overlay's boxes in the browser from the sweep before the server answers,
    then the server's exact boxes replace them: the two agree within a few photo pixels, the exact ones
    are the numbers the page prints, and the network does not run again."""
    page = _open(browser, f"{server}/Explore")
    _wait_for_images(page, 3)
    assert page.evaluate("[...document.querySelectorAll('.cam-live-overlay')].every(r => r.dataset.sweep === 'none')")
    track = page.locator('[role=group][aria-label="Box threshold τ"] > div')
    track.scroll_into_view_if_needed()
    track.hover()  # the pointer reaching the slider asks for the sweeps
    page.wait_for_function("document.querySelectorAll('.cam-live-overlay[data-sweep=ready]').length >= 2",
                           timeout=120_000)
    _status_idle(page)
    before = page.evaluate(_LIVE_STATE)
    assert all(o["source"] == "server" for o in before)
    network = page.get_by_text("network").first.inner_text().split("·")[0]
    page.evaluate(_RECORD_SOURCES)
    box = track.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)  # τ ≈ 0.9: smaller boxes
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cam-live-overlay')]"
        ".every(r => r.dataset.source === 'server' && r.dataset.serverTau === '0.90')", timeout=60_000)
    _status_idle(page)
    _assert_no_errors(page)
    seen = page.evaluate("window.__liveSeen")
    assert "sweep 0.90" in seen and seen.index("sweep 0.90") < seen.index("server 0.90")  # the browser first
    after = page.evaluate(_LIVE_STATE)
    assert all(a["boxes"] != b["boxes"] for a, b in zip(after, before))
    assert page.locator('input[aria-label="Box threshold τ"]').get_attribute("value") == "0.9"
    printed = [[float(v) for v in t.split("(")[2].split(")")[0].split(",")]
               for t in page.get_by_text("Box (x1, y1, x2, y2)").all_inner_texts()]
    for overlay, numbers in zip(after, printed):  # the drawn main box is the printed one
        xs, ys = zip(*_points(overlay["boxes"][0]))
        assert [round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))] == [round(v) for v in numbers]
    swept = page.evaluate("""(tau) => [...document.querySelectorAll('.cam-live-overlay')].map(r =>
        r.__sweepAt(tau).map(b => b.points))""", 0.9)
    for overlay, sweep in zip(after, swept):  # the sweep's box at 0.9 is the exact one within a few pixels
        exact, drawn = _points(overlay["boxes"][0]), [tuple(p) for p in sweep[0]]
        assert max(abs(a - b) for p, q in zip(exact, drawn) for a, b in zip(p, q)) <= 6, (exact, drawn)
    after_network = page.get_by_text("network").first.inner_text().split("·")[0]
    assert "(cached)" in after_network  # no new network run: the same raw maps, the same time
    assert after_network.replace("(cached)", "").split() == network.replace("(cached)", "").split()
    page.close()


def test_upload_drag_a_ground_truth_box_gives_the_core_iou(server, browser, shots):
    """A box dragged on the shown photo (800 px wide, shown at 640) lands in photo pixels and drives IoU."""
    from core.boxes import iou
    from tests.conftest import SAMPLE_CAR_BOX

    page = _open(browser, f"{server}/Upload")
    page.set_input_files("input[type=file]", str(ASSETS_DIR / "sample_car.jpg"))
    _wait_for_images(page, 2)
    _status_idle(page)
    page.get_by_text("Add a ground-truth box").click()
    page.get_by_text("I know where the car is").click()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('[data-testid=stMetric]').length >= 2", timeout=60_000)
    _status_idle(page)
    whole_photo = page.locator("[data-testid=stMetric]").all_inner_texts()  # the fields start at the whole photo
    canvas.scroll_into_view_if_needed()
    shown = canvas.bounding_box()
    scale = shown["width"] / 800
    assert abs(scale - 0.8) < 0.01  # the canvas shows the photo smaller than it is
    x1, y1, x2, y2 = SAMPLE_CAR_BOX
    page.mouse.move(shown["x"] + x1 * scale, shown["y"] + y1 * scale)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(shown["x"] + (x1 + (x2 - x1) * step / 10) * scale,
                        shown["y"] + (y1 + (y2 - y1) * step / 10) * scale)
    page.mouse.up()
    page.wait_for_function(
        "(before) => { const now = [...document.querySelectorAll('[data-testid=stMetric]')].map(m => m.innerText);"
        " return now.length === before.length && now.every((t, n) => t !== before[n]); }",
        arg=whole_photo, timeout=60_000)
    _status_idle(page)
    _assert_no_errors(page)
    typed = [float(page.get_by_label(side, exact=True).first.input_value()) for side in ("x1", "y1", "x2", "y2")]
    assert all(abs(t - s) <= 2 for t, s in zip(typed, SAMPLE_CAR_BOX)), typed  # photo pixels, not canvas ones
    shown_ious = [float(m.inner_text().split()[-1]) for m in page.locator("[data-testid=stMetric]").all()]
    predicted = [[float(v) for v in c.split("(")[2].split(")")[0].split(",")]
                 for c in page.get_by_text("Box (x1, y1, x2, y2)").all_inner_texts()]
    assert len(shown_ious) == len(predicted) >= 2
    for value, box in zip(shown_ious, predicted):  # captions round the box to whole pixels
        assert abs(value - iou(np.asarray(box), np.asarray(typed))) < 0.01, (value, box, typed)
    page.screenshot(path=shots / "upload_drawn_box.png", full_page=True)
    page.close()


def _navigation(page) -> list[tuple[str, bool]]:
    """The sidebar menu: (title, whether it has an icon) per entry."""
    page.wait_for_selector("[data-testid=stSidebarNav]", timeout=60_000)
    page.wait_for_timeout(1000)  # the legacy menu, when shown, would be replaced by now
    links = page.locator("[data-testid=stSidebarNavLink]")
    return [(links.nth(i).inner_text().split("\n")[-1].strip(),  # the text after the icon's ligature name
             links.nth(i).locator("[data-testid=stIconMaterial]").count() == 1) for i in range(links.count())]


def test_a_bookmarked_page_on_a_fresh_server_shows_the_apps_navigation(tmp_path, browser):
    """A page's address opened first (a bookmark, before anyone saw Home) once showed Streamlit's legacy
    `pages/` menu ("dashboard, Explore, …", no icons); it must show the same menu as from Home."""
    for address in _start_server(tmp_path, {"CARS196_DIR": ""}):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{address}/Upload", timeout=120_000)
        page.wait_for_selector("h1", timeout=120_000)
        from_bookmark = _navigation(page)
        assert page.locator("h1").first.inner_text() == "Explain your photos"
        assert page.url.endswith("/Upload")
        assert page.locator("[data-testid=stException]").count() == 0
        page.goto(address, timeout=120_000)
        page.wait_for_selector("h1", timeout=120_000)
        from_home = _navigation(page)
        page.close()
    expected = ["Home", "Explore", "Upload", "Layers", "Evaluate"]
    assert [title for title, _ in from_bookmark[:len(expected)]] == expected, from_bookmark
    assert all(has_icon for _, has_icon in from_bookmark), from_bookmark
    assert from_bookmark == from_home
