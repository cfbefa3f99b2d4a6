"""Command line: ``python -m core.evaluate --data PATH_OR_tfds:cars196 --split test --out DIR`` (see
``core.evaluate``). Prints a progress bar with ETA to stderr and the metrics table at the end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.evaluate.cli_format import ProgressBar, leaderboard_table, summary_table

DESCRIPTION = "Localisation metrics of every CAM method on a dataset split, with threshold calibration."


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes must be comma-separated integers, got {text!r}") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description=DESCRIPTION)
    parser.add_argument("--data", required=True, help="dataset folder or tfds:cars196")
    parser.add_argument("--split", default="test", help="split to report on (default: test)")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for per_photo.csv, per_class.csv, summary.json and plots/")
    parser.add_argument("--model", default="default",
                        help="default, resnet50, mobilenetv2, mobilenetv2-offline or a .keras file")
    parser.add_argument("--methods", default=None, help="all, fast (every one-pass method), both (cam,gradcam; the default) or "
                             "comma-separated method keys")
    parser.add_argument("--layer", default=None, help="Grad-CAM layer (default: the CAM feature layer)")
    parser.add_argument("--target", default=None,
                        help="predicted, car or a class index (default: what the model was calibrated with)")
    parser.add_argument("--sizes", type=_sizes, default=None,
                        help="input sizes fused, e.g. 224,576 (default: the calibrated pipeline's)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="average with the mirrored photo (default: the calibrated pipeline's)")
    parser.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest"), default=None)
    parser.add_argument("--variant", choices=("paper", "original"), default=None)
    parser.add_argument("--calibrate-on", default=None, metavar="PATH:SPLIT",
                        help="choose τ on this split first and store it with the model")
    parser.add_argument("--folds", type=int, default=None,
                        help="k-fold on the report split: each photo scored with τ chosen on other folds")
    parser.add_argument("--save-calibration", action="store_true",
                        help="with --folds: store the τ chosen on the whole split with the model")
    parser.add_argument("--box-correction", action=argparse.BooleanOptionalAction, default=None,
                        help="fit an affine correction of the τ box together with τ (default: as the model's "
                             "calibration)")
    parser.add_argument("--metrics", default="box",
                        help="box (localisation only, the default), all / faithfulness (every faithfulness "
                             "metric too) or comma-separated keys of core.faithfulness.METRICS")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N photos only")
    parser.add_argument("--batch-size", type=int, default=16)
    return parser.parse_args(argv)


def request_from(args):
    from core.evaluate.faithfulness import parse_metrics
    from core.evaluate.runner import EvalRequest

    return EvalRequest(
        data=args.data, split=args.split, model=args.model,
        methods=tuple(args.methods.split(",")) if args.methods else None, layer=args.layer,
        target=args.target, variant=args.variant, sizes=args.sizes, flip=args.flip,
        interpolation=args.interpolation, limit=args.limit,
        batch_size=args.batch_size, calibrate_on=args.calibrate_on, folds=args.folds,
        save_calibration=args.save_calibration, box_correction=args.box_correction,
        metrics=parse_metrics(args.metrics),
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        from core.evaluate.runner import run_evaluation

        bar = ProgressBar(sys.stderr)
        request = request_from(args)
        if request.metrics:
            from core.evaluate.faithfulness import cost_up_front

            passes = cost_up_front(request.metrics, 1, 224 * 224)
            print("faithfulness cost per photo and method (224×224 input): "
                  + ", ".join(f"{family} {count} forward passes" for family, count in passes.items() if count)
                  + "; pointing games need none", file=sys.stderr)
        summary = run_evaluation(request, args.out, progress=bar)
        bar.close()
    except (ValueError, FileNotFoundError, KeyError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished batches are kept in {args.out}; run the same command to resume",
              file=sys.stderr)
        return 130
    print(summary_table(summary))
    board = leaderboard_table(summary)
    if board:
        print(board)
    print(f"wrote {args.out / 'per_photo.csv'}, {args.out / 'summary.json'} and {args.out / 'plots'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
