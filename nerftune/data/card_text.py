"""The printed text of the synthetic ID card (scene option `texture: text`): a name, a number and a date in large
glyphs, so that OCR can read them in a rendered test view and `doc_cer` measures legibility. Drawn once with
Pillow's bundled font (no system fonts needed) into a bitmap over the card's face, sampled by card coordinates."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CARD_TEXT = ("ANNA NERF", "ID 4821 9375", "DOB 1990 05 17")
BITMAP_WIDTH = 1600  # pixels across the card; its height keeps the card's aspect
TEXT_LEFT, TEXT_RIGHT = 0.37, 0.97  # of the card's width: right of the photo
LINE_CENTRES = (0.66, 0.45, 0.24)  # of the card's height, bottom to top = 0 to 1


@lru_cache(maxsize=2)
def text_bitmap(aspect: float) -> np.ndarray:
    """(H, W) bool: where ink is, for a card of width / height `aspect` (row 0 at the card's top)."""
    height = round(BITMAP_WIDTH / aspect)
    image = Image.new("L", (BITMAP_WIDTH, height), 0)
    draw = ImageDraw.Draw(image)
    span = (TEXT_RIGHT - TEXT_LEFT) * BITMAP_WIDTH
    for line, centre in zip(CARD_TEXT, LINE_CENTRES):
        font = ImageFont.load_default(size=_font_size(draw, line, span, 0.15 * height))
        x = TEXT_LEFT * BITMAP_WIDTH
        draw.text((x, (1 - centre) * height), line, fill=255, font=font, anchor="lm")
    return np.asarray(image) >= 128


def _font_size(draw: ImageDraw.ImageDraw, line: str, width: float, max_height: float) -> int:
    """The largest size at which `line` fits `width` and is at most `max_height` tall."""
    size = int(max_height)
    while size > 8:
        left, top, right, bottom = draw.textbbox((0, 0), line, font=ImageFont.load_default(size=size))
        if right - left <= width and bottom - top <= max_height:
            return size
        size -= 2
    return size


def ink(u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    """Whether card coordinates (u left to right, v bottom to top, both 0..1) fall on a printed glyph."""
    bitmap = text_bitmap(aspect)
    rows = np.clip(((1 - v) * bitmap.shape[0]).astype(int), 0, bitmap.shape[0] - 1)
    cols = np.clip((u * bitmap.shape[1]).astype(int), 0, bitmap.shape[1] - 1)
    return bitmap[rows, cols]
