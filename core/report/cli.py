"""Command line: explain photos and write one report to hand out (HTML, PDF, PNG contact sheet).

    python -m core.report PHOTO_OR_FOLDER... --out DIR [--method both|all|KEYS] [--model M]
        [--data DATASET [--split test --limit 8]] [--evaluation RESULTS_DIR] [--format html,pdf,png]

Maps, τ and boxes are made exactly as ``python -m core.explain`` makes them (same options, same
calibrated pipeline). ``--data`` gives ground-truth boxes (matched by file name) and, with ``--split``,
the first ``--limit`` photos of that split. ``--evaluation`` adds the summary of a finished
``python -m core.evaluate`` folder. A photo that cannot be read is named, skipped and listed in the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.methods import METHODS
from core.explain import (
    add_pipeline_arguments, collect_photos, ground_truth_lookup, read_or_skip, start_session,
)

FORMATS = ("html", "pdf", "png")


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m core.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", help="photo files or folders of photos")
    parser.add_argument("--out", required=True, type=Path, help="folder for report.html, report.pdf, "
                                                                 "contact_sheet.png")
    add_pipeline_arguments(parser)
    parser.add_argument("--data", default=None, help="dataset folder: ground-truth boxes by file name")
    parser.add_argument("--split", default=None, help="also report photos of this split of --data")
    parser.add_argument("--limit", type=int, default=8, help="how many photos of --split (default 8)")
    parser.add_argument("--evaluation", type=Path, default=None,
                        help="a python -m core.evaluate output folder whose summary goes in the report")
    parser.add_argument("--format", default=",".join(FORMATS), help="comma-separated: html, pdf, png")
    parser.add_argument("--title", default="CAM Explorer report")
    parser.add_argument("--sheet-method", default=None,
                        help="the method on the contact sheet, or all (default: every method of a single "
                             "photo, else the first method)")
    args = parser.parse_args(argv)
    args.formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    unknown = sorted(set(args.formats) - set(FORMATS))
    if unknown or not args.formats:
        parser.error(f"--format takes {', '.join(FORMATS)}; got {args.format!r}")
    if args.split and not args.data:
        parser.error("--split needs --data (the dataset folder)")
    if not args.photos and not args.split:
        parser.error("give photos, or --data DATASET --split NAME")
    if args.sheet_method not in (None, "all") and args.sheet_method not in METHODS:
        parser.error(f"--sheet-method takes all or a method key ({', '.join(METHODS)}); got {args.sheet_method!r}")
    if args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    return args


def _dataset_photos(args, failures: list[dict]):
    """(name, photo, truth) for the first ``--limit`` photos of ``--split``, unreadable ones skipped."""
    from core.data import DatasetError, open_dataset
    from core.images import ImageDecodeError

    split = open_dataset(args.data)[args.split]
    for index in range(min(args.limit, len(split))):
        try:
            record = split[index]
        except (ImageDecodeError, DatasetError, OSError) as error:
            name = split.annotations.ids[index]
            print(f"skipped {name}: {error}", file=sys.stderr)
            failures.append({"photo": name, "error": str(error)})
            continue
        yield record.id, record.image, record.box


def _file_photos(args, truths: dict, failures: list[dict]):
    for path in collect_photos(args.photos):
        photo = read_or_skip(path, failures)
        if photo is not None:
            yield path.name, photo, truths.get(path.name)


def _evaluation(folder: Path | None):
    if folder is None:
        return ()
    from core.evaluate.outputs import load_results
    from core.report.build import evaluation_table, leaderboard_table

    summary = load_results(folder).summary
    tables = (evaluation_table(summary, f"Evaluation ({folder.name})"),)
    board = summary.get("leaderboard") or {}
    return tables + ((leaderboard_table(board, f"Leaderboard ({folder.name})"),) if board.get("rows") else ())


def _write(report, args) -> list[Path]:
    from core.files import write_atomically
    from core.report.html import to_html
    from core.report.pdf import to_pdf
    from core.report.sheet import contact_sheet_png

    writers = {"html": ("report.html", lambda: to_html(report).encode("utf-8")),
               "pdf": ("report.pdf", lambda: to_pdf(report)),
               "png": ("contact_sheet.png", lambda: contact_sheet_png(report, args.sheet_method))}
    written = []
    for fmt in args.formats:
        if fmt == "png" and not report.photos:
            print("no photo: no contact sheet", file=sys.stderr)
            continue
        name, make = writers[fmt]
        write_atomically(args.out / name, make())
        written.append(args.out / name)
    return written


def run(args) -> int:
    from core.report.build import make_report, photo_report

    tables = _evaluation(args.evaluation)  # a bad folder fails before the model loads
    session = start_session(args)
    failures: list[dict] = []
    sources = [_file_photos(args, ground_truth_lookup(args.data), failures)]
    if args.split:
        sources.append(_dataset_photos(args, failures))
    photos = []
    for source in sources:
        for name, photo, truth in source:
            started = time.perf_counter()
            raw = session.explain(photo)
            seconds = time.perf_counter() - started
            photos.append(photo_report(name, photo, raw, session.bundle, session.display,
                                       target_label=session.target.label, calibrated=session.calibrated,
                                       truth=truth, seconds=seconds))
            print(f"{name}: {photos[-1].predicted} ({photos[-1].score:.2f})", file=sys.stderr)
    if not photos:
        print(f"no photo could be read ({len(failures)} skipped): no report written", file=sys.stderr)
        return 1
    report = make_report(photos, session.bundle, session.calibrated, session.display, title=args.title,
                         tables=tables, skipped=[(f["photo"], f["error"]) for f in failures],
                         model_reason=session.choice.reason, note=session.note if args.threshold is None else None)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in _write(report, args):
        print(f"wrote {path}", file=sys.stderr)
    print(f"{len(photos)} photo(s) in the report; skipped {len(failures)}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = _parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
