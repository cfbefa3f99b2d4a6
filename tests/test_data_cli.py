"""``python -m core.data``: describes a folder; clear messages and non-zero exits, never a traceback."""

from __future__ import annotations

import subprocess
import sys

from core.data.__main__ import main
from tests.conftest import PROJECT_ROOT, SHARED, SHARED_CARS, require_shared
from tests.test_data_errors import make_devkit


def test_describes_the_shared_devkit_copy(capsys):
    assert main([str(require_shared(SHARED_CARS))]) == 0
    out = capsys.readouterr().out
    assert "layout:  devkit (original / torchvision)" in out
    assert "classes: 196" in out
    assert "train: 164 photos ready of 8144 annotated" in out
    assert "7980 annotated photos missing (skipped)" in out
    assert "test: 0 photos ready of 8041 annotated" in out


def test_annotations_without_photos_exit_1(capsys):
    assert main([str(require_shared(SHARED / "data" / "stanford_cars_csv"))]) == 1
    captured = capsys.readouterr()
    assert "layout:  csv (flat folders)" in captured.out
    assert "error: no photos are ready to use" in captured.err


def test_unknown_layout_missing_folder_and_bad_annotations_exit_2(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "not a Stanford Cars folder in any known layout" in capsys.readouterr().err
    assert main([str(tmp_path / "absent")]) == 2
    assert "absent: no such folder" in capsys.readouterr().err
    root = make_devkit(tmp_path / "cars", [("00001.jpg", 1, 1, 5, 5, 1)], {"00001.jpg": (8, 8)})
    (root / "devkit" / "cars_train_annos.mat").write_text("not matlab")
    assert main([str(root)]) == 2
    assert "cars_train_annos.mat: not a readable MATLAB annotation file" in capsys.readouterr().err


def test_module_runs_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "core.data", str(tmp_path / "absent")], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
