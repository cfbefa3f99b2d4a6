"""``python -m core.data [PATH | tfds:cars196]``: what a dataset folder holds, before using it.

Prints the layout detected, photos found and annotated per split, annotated photos missing and the
number of classes. Exit status: 0 when photos are ready, 1 when none is, 2 when the dataset cannot be
opened (missing folder, unknown layout, unreadable annotations) — with a message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from core.data.errors import DatasetError
from core.data.sources import ENV_VAR, open_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.data", description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=None,
                        help=f"dataset folder or tfds:cars196 (default: ${ENV_VAR})")
    parser.add_argument("--tfds-data-dir", default=None, help="tfds data dir (default: $TFDS_DATA_DIR)")
    parser.add_argument("--prepare", action="store_true",
                        help="tfds only: prepare cars196 from archives placed in <data_dir>/downloads/manual")
    args = parser.parse_args(argv)
    try:
        dataset = open_dataset(args.spec, data_dir=args.tfds_data_dir, download=args.prepare)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(dataset.describe())
    if dataset.summary.photos == 0:
        print("error: no photos are ready to use: the photo files listed in the annotations are absent; "
              "copy them into the folder shown above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
