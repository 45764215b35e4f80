"""Draw the app icon (assets/icon.png): pixels filled in raster order, the next one highlighted.

Run with ``python assets/make_icon.py``; the PNG is committed, so the app never needs this at run time.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
CELLS = 5
FILLED = {(0, 1), (0, 2), (0, 3), (1, 0), (1, 4), (2, 0), (2, 1), (2, 2)}  # the top of a digit, raster order
CURRENT = (2, 3)


def draw_icon() -> Image.Image:
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((8, 8, SIZE - 8, SIZE - 8), radius=44, fill=(30, 34, 41, 255))
    margin, gap = 36, 6
    cell = (SIZE - 2 * margin - (CELLS - 1) * gap) / CELLS
    for r in range(CELLS):
        for c in range(CELLS):
            x0 = margin + c * (cell + gap)
            y0 = margin + r * (cell + gap)
            before = (r, c) < CURRENT
            if (r, c) == CURRENT:
                colour = (79, 195, 247, 255)
            elif before:
                colour = (245, 245, 245, 255) if (r, c) in FILLED else (0, 0, 0, 255)
            else:
                colour = (58, 66, 82, 255)
            draw.rounded_rectangle((x0, y0, x0 + cell, y0 + cell), radius=6, fill=colour)
    return image


if __name__ == "__main__":
    draw_icon().save(Path(__file__).resolve().parent / "icon.png")
