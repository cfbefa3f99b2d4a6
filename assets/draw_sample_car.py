"""Draws ``assets/sample_car.jpg``: a car the project owns, for demos, the README and tests.

The Stanford Cars and ImageNet photos may not be redistributed, so the project ships a drawing instead.
ImageNet models do not call a drawing a car (MobileNetV2 says "jigsaw puzzle"), but with the target set
to the car class group its CAM still lands on the car — a fair demo of what the group target is for.
Run: ``python assets/draw_sample_car.py``.
"""

from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 800, 520
# Ground-truth box of the drawn car in the project convention (x1, y1, x2, y2), for tests and demos.
CAR_BOX = (117, 183, 723, 406)


def draw_sample_car(seed: int = 0) -> np.ndarray:
    """An RGB uint8 street scene with one red saloon car."""
    rows = np.linspace(0.0, 1.0, HEIGHT)[:, None]
    sky = np.stack([120 + 100 * rows, 170 + 60 * rows, 235 - 20 * rows], axis=-1)
    image = np.repeat(sky, WIDTH, axis=1).astype(np.uint8)
    cv2.rectangle(image, (0, int(HEIGHT * 0.62)), (WIDTH, int(HEIGHT * 0.68)), (70, 140, 60), -1)
    cv2.rectangle(image, (0, int(HEIGHT * 0.68)), (WIDTH, HEIGHT), (90, 90, 95), -1)
    for x in range(0, WIDTH, 120):
        cv2.rectangle(image, (x, int(HEIGHT * 0.86)), (x + 60, int(HEIGHT * 0.88)), (230, 230, 230), -1)
    body = np.array([[120, 330], [140, 270], [250, 255], [330, 190], [520, 185], [610, 250], [700, 265],
                     [720, 300], [715, 345], [120, 350]], np.int32)
    cv2.fillPoly(image, [body], (200, 30, 35))
    cv2.polylines(image, [body], True, (90, 10, 15), 3)
    cv2.fillPoly(image, [np.array([[345, 200], [515, 196], [585, 250], [300, 255]], np.int32)], (60, 80, 100))
    cv2.line(image, (445, 198), (440, 253), (200, 30, 35), 8)
    cv2.line(image, (140, 300), (715, 305), (150, 20, 25), 2)
    for centre_x in (230, 600):
        cv2.circle(image, (centre_x, 350), 55, (25, 25, 25), -1)
        cv2.circle(image, (centre_x, 350), 30, (170, 170, 175), -1)
        cv2.circle(image, (centre_x, 350), 8, (60, 60, 60), -1)
    cv2.ellipse(image, (700, 285), (14, 10), 0, 0, 360, (240, 240, 200), -1)
    cv2.rectangle(image, (120, 295), (135, 315), (230, 60, 40), -1)
    image = cv2.GaussianBlur(image, (3, 3), 0)
    noise = np.random.default_rng(seed).normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


if __name__ == "__main__":
    out = Path(__file__).with_name("sample_car.jpg")
    cv2.imwrite(str(out), cv2.cvtColor(draw_sample_car(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {out}")
