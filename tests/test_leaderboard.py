"""The leaderboard's statistics: means over defined photos, bootstrap intervals, ranks by direction."""

import numpy as np

from core.evaluate.leaderboard import _ranks, interval, leaderboard


def test_interval_brackets_the_mean_and_narrows_with_more_photos():
    rng = np.random.default_rng(3)
    few, many = rng.normal(0.6, 0.1, 20), rng.normal(0.6, 0.1, 2000)
    small, large = interval(few), interval(many)
    for cell, values in ((small, few), (large, many)):
        assert cell["low"] < cell["mean"] < cell["high"]
        assert cell["mean"] == values.mean() and cell["n"] == values.size
    assert (large["high"] - large["low"]) < (small["high"] - small["low"]) / 5
    # a 95 % interval of a mean is about ±1.96 standard errors
    expected = 2 * 1.96 * many.std() / np.sqrt(many.size)
    assert abs((large["high"] - large["low"]) - expected) < 0.2 * expected


def test_interval_ignores_undefined_photos_and_handles_degenerate_ones():
    assert interval([np.nan, 1.0, 0.0, np.nan])["n"] == 2
    assert interval([0.5, 0.5, 0.5]) == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 3}
    assert interval([0.7]) == {"mean": 0.7, "low": 0.7, "high": 0.7, "n": 1}
    assert interval([np.nan]) == {"mean": None, "low": None, "high": None, "n": 0}


def test_interval_is_reproducible():
    values = np.random.default_rng(0).random(50)
    assert interval(values) == interval(values)


def test_ranks_follow_the_metrics_direction_and_share_ties():
    assert _ranks([0.5, 0.9, 0.5, None], higher_is_better=True) == [2, 1, 2, None]
    assert _ranks([0.5, 0.9, 0.1], higher_is_better=False) == [2, 3, 1]


def test_board_has_one_row_per_method_and_every_metric():
    values = {"cam": {"iou": np.array([0.8, 0.6]), "deletion": np.array([0.2, 0.3])},
              "gradcam": {"iou": np.array([0.5, 0.5]), "deletion": np.array([0.1, 0.1])}}
    board = leaderboard(values, {"iou": True, "deletion": False}, resamples=100)
    by_method = {row["method"]: row for row in board}
    assert by_method["cam"]["iou"]["rank"] == 1 and by_method["gradcam"]["iou"]["rank"] == 2
    assert by_method["gradcam"]["deletion"]["rank"] == 1  # lower deletion AUC is better
    assert by_method["cam"]["deletion"]["mean"] == 0.25


def test_a_metric_missing_for_a_method_is_unranked():
    board = leaderboard({"a": {"x": np.array([1.0])}, "b": {}}, {"x": True}, resamples=50)
    assert board[1]["x"] == {"mean": None, "low": None, "high": None, "n": 0, "rank": None}


def test_the_shipped_board_is_consistent_and_says_where_a_method_stands():
    from core.evaluate.leaderboard import shipped_leaderboards, standing

    boards = shipped_leaderboards()
    assert boards, "assets/leaderboard.json ships at least one board"
    board = boards[0]
    assert board["model"] == "MobileNetV2 (ImageNet, offline weights)" and board["n_photos"] == 164
    for column in board["metrics"]:
        cells = [row[column["key"]] for row in board["rows"]]
        means = [c["mean"] for c in cells]
        best = (max if column["higher_is_better"] else min)(means)
        assert all(c["rank"] == 1 for c in cells if c["mean"] == best)
        assert all(c["low"] <= c["mean"] <= c["high"] for c in cells)
        assert all(c["n"] == 164 for c in cells) or column["family"] == "road"
    places = standing(board, "gradcampp")
    iou = next(p for p in places if p["key"] == "mean_iou")
    assert iou["rank"] == 1 and iou["of"] == len(board["rows"])  # the winner of the localisation study
    assert standing(board, "no-such-method") == []


def test_home_shows_the_shipped_board(offline_bundle):
    from tests.apptest_helpers import run_page

    app = run_page("dashboard.py")
    assert any(s.value == "Which method should I trust?" for s in app.subheader)
    board = next(d.value for d in app.dataframe if "Method" in d.value.columns)
    assert "Grad-CAM++" in list(board["Method"]) and "Mean IoU ↑" in board.columns
