"""Command line: fine-tune the CAM model on Cars196 (see ``core/train/__init__.py`` for the recipe).

    python -m core.train --data PATH_OR_tfds:cars196 --out models/NAME [--preset recommended|original]
        [--backbone auto|resnet50|mobilenetv2|tiny] [--epochs N] [--batch-size B] [--steps-per-epoch S]
        [--resume] ...

Save under ``models/NAME`` and the dashboard lists the model (and picks the newest by default).
``--resume`` continues the run in ``--out``; options left out are read from its checkpoint.
Exit status: 0 done, 2 bad input (message says what to do), 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from core.train.config import (  # noqa: E402
    BACKBONE_CHOICES, PRECISIONS, PRESETS, SCHEDULES, TrainConfig, make_config,
)

# CLI option → TrainConfig field, for options that default to "the preset's value" (None).
_FIELDS = ("backbone", "weights", "epochs", "batch_size", "steps_per_epoch", "learning_rate", "momentum",
           "schedule", "warmup_epochs", "image_size", "augment", "patience", "max_train_photos",
           "max_val_photos", "workers", "seed", "precision")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset folder (any Stanford Cars layout) or tfds:cars196; "
                                       "optional with --resume")
    parser.add_argument("--out", required=True, type=Path,
                        help="run folder; use models/NAME so the dashboard lists the model")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="recommended (default), or original: the study's SGD 0.01, batch 16, "
                             "15 epochs, /255")
    parser.add_argument("--backbone", choices=BACKBONE_CHOICES,
                        help="auto (default): ResNet50 if its ImageNet weights can be had, else the offline "
                             "MobileNetV2; tiny is a test/development backbone")
    parser.add_argument("--weights", choices=("imagenet", "none"),
                        help="start from ImageNet (default) or random")
    parser.add_argument("--epochs", type=int,
                        help="recommended 30 (early stopping may end sooner), original 15")
    parser.add_argument("--batch-size", type=int,
                        help="global batch, split between GPUs when there are several")
    parser.add_argument("--steps-per-epoch", type=int, help="default: every training photo once per epoch")
    parser.add_argument("--learning-rate", type=float, help="peak rate (recommended 0.005 at batch 16)")
    parser.add_argument("--momentum", type=float, help="SGD momentum (recommended 0.9, original 0)")
    parser.add_argument("--schedule", choices=SCHEDULES, help="cosine (recommended) or constant (original)")
    parser.add_argument("--warmup-epochs", type=float,
                        help="linear warm-up before the cosine decay (default 1)")
    parser.add_argument("--image-size", type=int, help="square input side in pixels (default 224)")
    parser.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                        help="no random crop, flip or colour jitter (the original preset has none)")
    parser.add_argument("--patience", type=int, help="early stopping after N epochs without a better "
                                                     "validation accuracy; 0 turns it off")
    parser.add_argument("--max-train-photos", type=int, help="train on a seeded subset (quick runs)")
    parser.add_argument("--max-val-photos", type=int, help="validate on a seeded subset")
    parser.add_argument("--workers", type=int, help="threads decoding photos (default: CPU count, at most 8)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="auto (default): mixed_float16 on tensor-core GPUs, else float32; "
                             "mixed_bfloat16 halves ResNet50's step time on CPUs with AMX "
                             "(see bench/train_speed.py)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    return parser


def _explicit(args: argparse.Namespace) -> dict:
    """The options the user gave (not None); ``--patience 0`` means "no early stopping"."""
    given = {name: getattr(args, name) for name in _FIELDS if getattr(args, name) is not None}
    if given.get("patience") == 0:
        given["patience"] = None
    return given


def _dataset_spec(data: str) -> str:
    """A folder as an absolute path (``--resume`` may run from elsewhere); ``tfds:…`` as given."""
    if data.strip().lower().startswith("tfds:"):
        return data.strip()
    return str(Path(data).expanduser().resolve())


def build_config(args: argparse.Namespace) -> TrainConfig:
    """A new run from preset + options, or (``--resume``) the saved run's settings + the options given."""
    from core.train.state import RunFolder, TrainingState

    given = _explicit(args)
    folder = RunFolder(args.out)
    if args.resume and folder.state.is_file():
        saved = TrainingState.load(folder.state).config
        if args.preset is not None:
            given["preset"] = args.preset
        if args.data is not None:
            given["data"] = _dataset_spec(args.data)
        return TrainConfig.from_json({**saved, **given, "out": str(args.out)})
    if args.data is None:
        raise ValueError("--data is required (a Stanford Cars folder or tfds:cars196)")
    patience_off = "patience" in given and given["patience"] is None
    config = make_config(_dataset_spec(args.data), args.out, args.preset or "recommended", **given)
    return config.replace(patience=None) if patience_off else config


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def say(message: str) -> None:
        print(message, flush=True)

    from core.model_sources import WeightsUnavailableError

    try:
        config = build_config(args)
        from core.train.run import train

        result = train(config, resume=args.resume, say=say, verbose=1 if sys.stdout.isatty() else 0)
    except (ValueError, FileNotFoundError, WeightsUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    say(f"done: {result.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
