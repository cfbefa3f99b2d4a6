"""Reports: the HTML is self-contained and holds the computed IoU, the PDF holds the same content and the
provenance, the contact sheet is a 16:9 grid, the CLI runs the real offline MobileNetV2 and skips bad
photos by name, and users' photo names are escaped."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from core.boxes import iou
from core.cam import Target
from core.explanation import BoxSettings, DisplaySettings, render_views
from core.images import read_image
from core.offline_mobilenet import find_checkpoint
from core.paths import ASSETS_DIR
from core.pipelines import CalibratedPipeline, calibrated_pipelines
from core.report import (
    MethodResult, PhotoReport, build_report, contact_sheet, evaluation_table, make_report, sheet_layout,
    to_html, to_pdf,
)
from core.report.cli import main
from core.report.images import fitted_size, jpeg_bytes
from core.report.model import comparison_rows
from tests.conftest import SAMPLE_CAR_BOX, SHARED_CARS, require_shared

pypdf = pytest.importorskip("pypdf", reason="pypdf is a dev dependency (requirements-dev.txt)")
SAMPLE = ASSETS_DIR / "sample_car.jpg"
HOSTILE = '<script>alert("x")</script>&.jpg'


class _Document(HTMLParser):
    """Every tag's attributes, the figures' data and the text, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.attributes, self.images, self.figures, self.text, self.tags = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes.extend(attrs.values())
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "figure":
            self.figures.append(attrs)

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Document:
    document = _Document()
    document.feed(html)
    document.close()
    return document


def _decode(uri: str) -> np.ndarray:
    head, payload = uri.split(",", 1)
    assert head == "data:image/jpeg;base64"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="module")
def calibrated_bundle(offline_bundle):
    """The offline model with its calibration (the shipped one unless this machine made its own)."""
    from core.calibration import with_calibration

    return with_calibration(offline_bundle)


@pytest.fixture(scope="module")
def sample_report_parts(calibrated_bundle, offline_explainer):
    """The sample drawing explained for the car classes by the real offline MobileNetV2, boxed at τ 0.5."""
    photo = read_image(SAMPLE)
    group = calibrated_bundle.class_groups["car (all ImageNet car classes)"]
    target = Target.group(group, "car")
    raw = offline_explainer.explain([photo], methods=("cam", "gradcam"), target=target)[0]
    display = DisplaySettings(BoxSettings(0.5), 0.5, "jet")
    views = render_views(photo, raw, display, SAMPLE_CAR_BOX)
    calibrated = calibrated_pipelines(calibrated_bundle.metadata)[0]
    return photo, raw, display, views, calibrated, target


def _report(parts, bundle, name="sample_car.jpg", **extra):
    photo, raw, display, views, calibrated, target = parts
    return build_report(name, photo, raw, display, bundle, calibrated, views=views, truth=SAMPLE_CAR_BOX,
                        seconds=0.25, target_label=target.label, **extra)


def test_html_is_self_contained_and_shows_the_computed_iou(sample_report_parts, calibrated_bundle):
    views = sample_report_parts[3]
    html = to_html(_report(sample_report_parts, calibrated_bundle))
    document = _parse(html)
    assert not [a for a in document.attributes if a and ("http://" in a or "https://" in a)]
    assert "script" not in document.tags and "link" not in document.tags
    assert len(document.images) == 2
    for uri in document.images:
        assert _decode(uri).shape == (520, 800, 3)  # the photo's size: under the 960-px cap
    by_method = {f["data-method"]: float(f["data-iou"]) for f in document.figures}
    assert set(by_method) == {"cam", "gradcam"}
    text = " ".join(document.text)
    for view in views:
        expected = iou(view.localized.main_box, SAMPLE_CAR_BOX)  # computed here, independently
        assert expected > 0.6  # the car-group box sits on the drawn car
        assert by_method[view.method] == pytest.approx(expected, abs=1e-12)
        assert f"IoU {expected:.3f}" in text
    assert "CAM" in text and "Grad-CAM" in text and "Method comparison" in text and "Provenance" in text


def test_large_overlays_are_embedded_shrunk_to_the_cap():
    assert fitted_size(1920, 1080) == (960, 540)
    assert fitted_size(500, 2000) == (240, 960)
    assert fitted_size(800, 520) == (800, 520)
    big = np.full((1080, 1920, 3), 200, np.uint8)
    decoded = cv2.imdecode(np.frombuffer(jpeg_bytes(big), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (540, 960, 3)


def test_pdf_holds_the_overlays_tables_and_provenance(sample_report_parts, calibrated_bundle):
    views = sample_report_parts[3]
    reader = pypdf.PdfReader(io.BytesIO(to_pdf(_report(sample_report_parts, calibrated_bundle))))
    # the summary (comparison, the shipped leaderboard, provenance) on its page(s), then the photo's page
    assert len(reader.pages) in (2, 3)
    texts = [page.extract_text() for page in reader.pages]
    first, second = "\n".join(texts[:-1]), texts[-1]
    assert "Method comparison" in first and "Provenance" in first and "Leaderboard" in first
    assert calibrated_bundle.name in first
    sha = hashlib.sha256(find_checkpoint().read_bytes()).hexdigest()[:16]
    assert sha in first.replace("\n", "")
    calibration = calibrated_bundle.metadata["calibration"]
    flat = "".join(first.split())
    assert "τcalibratedon" in flat and "".join(calibration["calibrated_on"].split()) in flat
    assert "sample_car.jpg" in second
    for view in views:
        assert f"IoU {view.localized.iou:.3f}" in second
    assert len(reader.pages[-1].images) == 2


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (setup.sh --dev) gives pdftotext")
def test_pdftotext_reads_the_same_provenance(sample_report_parts, calibrated_bundle, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(to_pdf(_report(sample_report_parts, calibrated_bundle)))
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "MobileNetV2 (ImageNet, offline weights)" in text and "Weights" in text


def test_hostile_photo_name_is_text_not_markup(sample_report_parts, calibrated_bundle):
    report = _report(sample_report_parts, calibrated_bundle, name=HOSTILE)
    html = to_html(report)
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.jpg" in html
    assert HOSTILE in " ".join(_parse(html).text)  # shown to the reader exactly as named
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(to_pdf(report))).pages)
    assert HOSTILE in text
    assert contact_sheet(report).shape == (1080, 1920, 3)


def _solid(color, name, iou_value=None, method="gradcam") -> PhotoReport:
    overlay = np.zeros((520, 800, 3), np.uint8)
    overlay[:] = color
    result = MethodResult(method, "Grad-CAM", "out_relu", 0.5, True, iou_value, (10, 10, 100, 100), 1, None,
                          overlay)
    return PhotoReport(name, 800, 520, "sports car", 0.9, "car", (("sports car", 0.9),), (0, 0, 90, 90), None,
                       (result,))


def _plain_report(photos, **extra):
    from core.model_spec import inspect_model
    from tests.conftest import tiny_cam_model

    bundle = inspect_model(tiny_cam_model(), name="tiny", source="a test model", preprocessing="unit")
    return make_report(photos, bundle, CalibratedPipeline(), DisplaySettings(BoxSettings(0.5)), **extra)


def test_contact_sheet_is_a_16_9_grid_of_the_overlays():
    colors = [(230, 20, 20), (20, 200, 20), (20, 20, 230), (230, 200, 20)]
    report = _plain_report([_solid(c, f"photo {i}", 0.25 * i) for i, c in enumerate(colors)])
    layout = sheet_layout(4, 800 / 520)
    assert (layout.rows, layout.cols) == (2, 2)  # 2×2 shows 800×520 overlays larger than 1×4 or 4×1
    sheet = contact_sheet(report)
    assert sheet.shape == (1080, 1920, 3)
    xs, ys = sorted({x for x, *_ in layout.cells}), sorted({y for _, y, *_ in layout.cells})
    assert len(xs) == 2 and len(ys) == 2 and xs[1] > 1920 / 2 > xs[0] and ys[1] > 1080 / 2
    height = layout.cells[0][3]
    for (x, y, w, _), color in zip(layout.cells, colors):
        shown_height = min(height, round(w * 520 / 800))
        assert np.abs(sheet[y + shown_height // 2, x + w // 2].astype(int) - color).max() <= 2
    assert (sheet[5, 5] == 255).all()  # the background is white
    assert (sheet_layout(1, 800 / 520).rows, sheet_layout(1, 800 / 520).cols) == (1, 1)


def test_method_comparison_counts_only_photos_with_a_truth():
    photos = [_solid((0, 0, 0), "a", 0.6), _solid((0, 0, 0), "b", 0.4), _solid((0, 0, 0), "c", None)]
    (row,) = comparison_rows(photos, {"gradcam": 0.71})
    assert (row.photos, row.scored, row.hits) == (3, 2, 1)
    assert row.mean_iou == pytest.approx(0.5) and row.heldout_iou == 0.71


def _summary() -> dict:
    method = {"tau": 0.53, "tau_source": "2-fold", "mean_iou": 0.8123, "median_iou": 0.83,
              "boxacc": {"0.3": 1.0, "0.5": 0.875, "0.7": 0.75}, "maxboxacc": 0.9, "maxboxaccv2": 0.8,
              "top1_loc": 0.875, "gt_known_loc": 0.875}
    base = {"mean_iou": 0.4, "median_iou": 0.41, "boxacc": {"0.3": 0.9, "0.5": 0.2, "0.7": 0.0}}
    weaker = {**method, "tau": 0.2, "mean_iou": 0.6}
    return {"model": "tiny", "data": "cars", "split": "test", "n": 8,
            "pipeline": {"methods": ["eigencam", "gradcam"]}, "eigencam": weaker, "gradcam": method,
            "baselines": {"full_image": base, "center_box": {**base, "fraction": 0.82}}}


def test_evaluation_leaderboard_goes_into_html_and_pdf():
    table = evaluation_table(_summary())
    assert table.rows[0][:3] == ("Grad-CAM", "0.53", "0.812")
    assert [r[0] for r in table.rows] == ["Grad-CAM", "Eigen-CAM", "full image", "center box (0.82)"]
    report = _plain_report([_solid((90, 90, 90), "a", 0.5)], tables=[table])
    assert report.provenance.get("Weights").startswith("not known")  # a model built in memory has no file
    assert "0.812" in " ".join(_parse(to_html(report)).text)
    first = pypdf.PdfReader(io.BytesIO(to_pdf(report))).pages[0].extract_text()
    assert "Evaluation" in first and "MaxBoxAcc" in first
    assert "Grad-CAM 0.53 0.812 0.830 1.000 0.875 0.750 0.900 0.800 0.875 0.875" in first
    assert "center box (0.82) 0.400 0.410 0.900 0.200 0.000" in first


def test_a_report_needs_content():
    with pytest.raises(ValueError, match="at least one photo"):
        _plain_report([])


# -- the command line, on the real offline MobileNetV2 ------------------------------------------------------
def test_cli_reports_the_sample_and_names_a_bad_photo(tmp_path, capsys, offline_bundle):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"%PDF-1.4 not a photo")
    out = tmp_path / "out"
    code = main([str(SAMPLE), str(broken), "--out", str(out), "--model", "mobilenetv2-offline", "--plain",
                 "--target", "car", "--threshold", "0.5"])
    assert code == 0
    assert "broken.jpg" in capsys.readouterr().err
    document = _parse((out / "report.html").read_text())
    assert len(document.images) == 2 and {f["data-method"] for f in document.figures} == {"cam", "gradcam"}
    text = " ".join(document.text)
    assert "Skipped photos" in text and str(broken) in text and "sample_car.jpg" in text
    reader = pypdf.PdfReader(out / "report.pdf")
    assert len(reader.pages) in (2, 3)  # summary (with the shipped leaderboard), then the photo
    assert "broken.jpg" in " ".join(page.extract_text() for page in reader.pages[:-1])
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape == (1080, 1920, 3)


def test_cli_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    assert main([str(bad), "--out", str(tmp_path / "out"), "--model", "mobilenetv2-offline"]) == 1
    assert not (tmp_path / "out" / "report.html").exists()
    assert main([str(SAMPLE), "--out", str(tmp_path), "--evaluation", str(tmp_path / "nowhere")]) == 2
    assert "summary.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(SAMPLE), "--out", str(tmp_path), "--format", "docx"])
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main([str(SAMPLE), "--out", str(tmp_path), "--sheet-method", "nomethod"])


def test_cli_reports_a_dataset_split_with_its_evaluation(tmp_path):
    """Real Stanford Cars photos: boxes against the annotations, and an evaluation folder's leaderboard."""
    import json

    cars = require_shared(SHARED_CARS)
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / "summary.json").write_text(json.dumps(_summary()))
    (evaluation / "per_photo.csv").write_text("id\n")
    (evaluation / "per_class.csv").write_text("label\n")
    out = tmp_path / "out"
    assert main(["--out", str(out), "--model", "mobilenetv2-offline", "--plain", "--method", "gradcam",
                 "--data", str(cars), "--split", "train", "--limit", "2", "--evaluation", str(evaluation),
                 "--format", "html,png"]) == 0
    assert not (out / "report.pdf").exists()
    document = _parse((out / "report.html").read_text())
    ious = [float(f["data-iou"]) for f in document.figures]
    assert len(ious) == 2 and all(v > 0.5 for v in ious), ious  # the real model finds the cars
    text = " ".join(document.text)
    assert "Evaluation (evaluation)" in text and "0.812" in text
    assert f"{np.mean(ious):.3f}" in text  # the comparison's mean IoU is over the two photos
    assert cv2.imread(str(out / "contact_sheet.png")).shape == (1080, 1920, 3)
