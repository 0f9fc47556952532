"""Draw the predictions on the image: a box per face, its class and probability above it."""

from __future__ import annotations

import cv2
import numpy as np

# One colour per FER2013 class (RGB); other class lists cycle through them.
PALETTE = [
    (220, 50, 47),  # angry
    (133, 153, 0),  # disgust
    (108, 113, 196),  # fear
    (250, 200, 30),  # happy
    (38, 139, 210),  # sad
    (211, 54, 130),  # surprise
    (200, 200, 200),  # neutral
]


def draw(image: np.ndarray, rows: list[dict], classes: list[str]) -> np.ndarray:
    """A copy of ``image`` (RGB) with each face row's box and ``<class> <probability>``."""
    out = image.copy()
    height, width = out.shape[:2]
    thickness = max(1, round(max(height, width) / 300))
    for row in rows:
        if row.get("face") is None or row.get("predicted") is None:
            continue
        x, y, w, h = (int(round(row[k])) for k in ("x", "y", "w", "h"))
        colour = PALETTE[classes.index(row["predicted"]) % len(PALETTE)]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        label = f"{row['predicted']} {row['p_' + row['predicted']]:.2f}"
        scale = max(0.35, min(1.5, w / 160))
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y - th - base - 2 if y - th - base - 2 >= 0 else y + h  # above the box, else below
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(
            out, label, (x + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
            thickness, cv2.LINE_AA,
        )  # fmt: skip
    return out
