"""`doc_cer`: how legible the document's text is in a rendered test view, as the character error rate of the text
Tesseract reads in the rendered document against the text it reads in the same place of the ground truth.

The document is cut out by its quadrilateral (`document_corners`, which the synthetic scene and
`nerftune prepare --masks` record, projected into the view) and rectified to an upright rectangle tall enough for
Tesseract. Which way up the text reads is decided once per view, on the ground truth (the rotation that reads the
most letters and digits). Without Tesseract (Debian's `tesseract-ocr` and `pytesseract`) the metric is empty and the
sweep says once how to install it; a view whose ground truth reads fewer than `MIN_CHARACTERS` characters, or whose
document is smaller than `MIN_DOCUMENT_PIXELS`, has no text to judge, and an empty doc_cer too.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

OCR_MISSING = (
    "doc_cer is empty: it needs the Tesseract OCR engine (Debian/Ubuntu: apt-get install tesseract-ocr) and "
    "pytesseract (pip install pytesseract); the other document metrics are unaffected"
)
MIN_CHARACTERS = 3
# a document whose shortest side spans fewer pixels in a view carries no legible text there: it is not read at all
# (the demo's 160x120 views show the card about 35 pixels tall)
MIN_DOCUMENT_PIXELS = 60
RECTIFIED_HEIGHT = 400  # pixels: the document's height once rectified, enough for Tesseract's glyph sizes


@lru_cache(maxsize=1)
def ocr_available() -> bool:
    if shutil.which("tesseract") is None:
        return False
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except Exception:  # not installed, or a tesseract that does not run
        return False
    return True


@dataclass
class TextCheck:
    """One test view's document: its corners in the view's pixels (in the document's own order: bottom-left,
    bottom-right, top-right, top-left) and what its ground truth reads (found on first use)."""

    corners: np.ndarray  # (4, 2) x, y at the recorded image size
    image_size: tuple[int, int]  # (width, height) the corners belong to
    aspect: float  # the document's width / height
    truth: str | None = None
    turns: int = 0  # quarter turns that make the text upright

    def error_rate(self, truth_image: np.ndarray, rendered: np.ndarray) -> float | None:
        """doc_cer of `rendered` against `truth_image` ((H, W, 3) floats in [0, 1]), None without text to judge."""
        if self.truth is None:
            self.read_truth(truth_image)
        if not self.has_text:
            return None
        return character_error_rate(
            read_text(self.rectified(rendered).rotate(90 * self.turns, expand=True)), self.truth
        )

    def read_truth(self, truth_image: np.ndarray) -> None:
        """Read the ground truth's text, the right way up: the quarter turns at which Tesseract reads the most."""
        truth = self.rectified(truth_image)
        readings = [(_confident_characters(truth.rotate(90 * turns, expand=True)), turns) for turns in range(4)]
        self.turns = max(readings)[1]
        self.truth = read_text(truth.rotate(90 * self.turns, expand=True))

    @property
    def has_text(self) -> bool:
        return sum(c.isalnum() for c in self.truth or "") >= MIN_CHARACTERS

    def rectified(self, image: np.ndarray) -> Image.Image:
        """The document as an upright-ish grey rectangle (before the quarter turns)."""
        height, width = image.shape[:2]
        corners = self.corners * [width / self.image_size[0], height / self.image_size[1]]
        out_h = RECTIFIED_HEIGHT
        out_w = round(out_h * self.aspect)
        target = [(0, out_h), (out_w, out_h), (out_w, 0), (0, 0)]
        grey = Image.fromarray((np.clip(image[..., :3].mean(-1), 0, 1) * 255).astype(np.uint8))
        return grey.transform((out_w, out_h), Image.PERSPECTIVE, _perspective(target, corners), Image.BICUBIC)


def _perspective(target: list[tuple[float, float]], source: np.ndarray) -> tuple[float, ...]:
    """PIL's perspective coefficients: each output pixel (x, y) samples the input at the homography of it."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        values += [u, v]
    return tuple(np.linalg.solve(np.array(rows, float), np.array(values, float)))


def read_text(image: Image.Image) -> str:
    """What Tesseract reads, normalised: upper case, one space between words."""
    import pytesseract

    return normalised(pytesseract.image_to_string(image, config="--psm 6"))


def _confident_characters(image: Image.Image) -> float:
    """How much Tesseract is sure it reads: the characters of its words weighted by their confidence (0 to 1)."""
    import pytesseract

    data = pytesseract.image_to_data(image, config="--psm 6", output_type=pytesseract.Output.DICT)
    return sum(
        len(word.strip()) * float(conf) / 100 for word, conf in zip(data["text"], data["conf"]) if float(conf) > 0
    )


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.upper()).strip()


def character_error_rate(read: str, truth: str) -> float:
    """Edit distance (insertions, deletions, substitutions) over the truth's length, at most 1 (all wrong)."""
    previous = list(range(len(read) + 1))
    for i, expected in enumerate(truth, 1):
        current = [i]
        for j, got in enumerate(read, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (expected != got)))
        previous = current
    return min(previous[-1] / max(len(truth), 1), 1.0)
