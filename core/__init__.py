"""CAM Explorer core: models, class activation maps, boxes and IoU — no UI code here."""

import os

# TensorFlow's C++ start-up chatter hides real messages from users; warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.threads import leave_cores_to_tensorflow  # noqa: E402

leave_cores_to_tensorflow()
