"""Put a calibration or a leaderboard measured on this machine into the project's shipped assets.

Shipped results are numbers only (τ, box corrections, leaderboard cells), never photos or images, so
the dashboard shows them before anyone runs anything.

    # τ (+ box corrections) of a `core.evaluate --folds 5 --save-calibration` run into the main entry,
    # keeping the shipped entry's other pipelines (e.g. the plain single-view one)
    python scripts/ship_results.py calibration MODELS_DIR/calibration.json
    # the leaderboard of a `core.evaluate --metrics all` run, as board number N (0 = the main one)
    python scripts/ship_results.py leaderboard RESULTS_DIR --title "..." --index 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from core.files import read_json_object, write_atomically  # noqa: E402
from core.paths import ASSETS_DIR  # noqa: E402


def ship_calibration(measured: Path) -> Path:
    target = ASSETS_DIR / "calibration.json"
    shipped, new = read_json_object(target), read_json_object(measured)
    for model, entry in new.items():
        others = (shipped.get(model, {}).get("calibration") or {}).get("other_pipelines", [])
        if others:
            entry["calibration"]["other_pipelines"] = others
        entry["calibration"].setdefault("calibrated_on", entry["threshold_source"])
        shipped[model] = entry
    write_atomically(target, json.dumps(shipped, indent=1, sort_keys=True))
    return target


def ship_leaderboard(results: Path, title: str, index: int) -> Path:
    summary = json.loads((results / "summary.json").read_text())
    board = dict(summary["leaderboard"])
    board.update({
        "title": title, "model": summary["model"], "pipeline": summary["pipeline"],
        "pipeline_label": summary["pipeline_label"], "data": f"{summary['data']} [{summary['split']}]",
        "n_photos": summary["n"], "folds": summary.get("folds"), "box_correction": summary.get("box_correction"),
        "photos_per_second": summary.get("photos_per_second"),
    })
    target = ASSETS_DIR / "leaderboard.json"
    data = read_json_object(target)
    boards = data.get("boards", [])
    if index < len(boards):
        boards[index] = board
    else:
        boards.append(board)
    data["boards"] = boards
    write_atomically(target, json.dumps(data, indent=1))
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cal = sub.add_parser("calibration")
    cal.add_argument("measured", type=Path)
    board = sub.add_parser("leaderboard")
    board.add_argument("results", type=Path)
    board.add_argument("--title", required=True)
    board.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    path = (ship_calibration(args.measured) if args.what == "calibration"
            else ship_leaderboard(args.results, args.title, args.index))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
