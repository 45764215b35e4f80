"""Image files to what a model sees: any size, mode or format Pillow reads, converted faithfully, with a note
of every step, or refused with a one-line reason."""

from __future__ import annotations

import io
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.errors import ImageError
from app.core.files import FileTooLarge, NotARegularFile, describe_os_error, read_limited

MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass
class ConvertedImage:
    """``values`` ``(C, H, W)`` uint8 in ``0 .. K-1``: exactly what the model sees; ``notes``: what was done."""

    values: np.ndarray
    notes: list[str] = field(default_factory=list)
    source_size: tuple[int, int] = (0, 0)
    source_mode: str = ""

    def describe(self) -> str:
        return "; ".join(self.notes)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message on one line, shortened: decoders' messages can span lines."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Formats never decoded: Pillow hands EPS to Ghostscript, an external interpreter of untrusted code.
REFUSED_FORMATS = frozenset({"EPS"})
_EPS_MAGIC = (b"%!PS", b"\xc5\xd0\xd3\xc6")


def _allowed_formats() -> list[str]:
    Image.init()
    return [name for name in Image.OPEN if name not in REFUSED_FORMATS]


def _decode(data: bytes, name: str) -> Image.Image:
    """Decode ``data`` fully, with warnings silenced (corrupt files make Pillow print them) except the
    decompression-bomb warning, which refuses the file."""
    if data.startswith(_EPS_MAGIC):
        raise ImageError(f"{name} is a PostScript (EPS) file; it is not read, because decoding it runs Ghostscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=_allowed_formats())
        image.load()
    return image


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_damage(data: bytes) -> str:
    """What is wrong with the chunks of a PNG file (a chunk that fails its CRC check, a file cut inside a
    chunk), empty where nothing is or where ``data`` is not a PNG. Decoders do not check every CRC."""
    if not data.startswith(_PNG_SIGNATURE):
        return ""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        end = pos + 12 + length
        if end > len(data):
            return f"it is truncated inside its {kind!r} chunk"
        if zlib.crc32(data[pos + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            return f"its {kind!r} chunk fails its CRC check (the bytes were damaged)"
        if kind == "IEND":
            return ""
        pos = end
    # Nothing but the signature (or less than a chunk) is no PNG at all, not a damaged one.
    return "it is truncated (it ends before its IEND chunk)" if pos > len(_PNG_SIGNATURE) else ""


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open and fully decode an image, turning every failure into :class:`ImageError`."""
    name = "the data" if isinstance(source, bytes) else Path(source).name
    try:
        if isinstance(source, bytes):
            data = source
        else:
            # A regular file only (a FIFO would hang, /dev/zero never end), and never more than the limit read.
            data = read_limited(source, MAX_FILE_BYTES)
        if not data:
            raise ImageError(f"{name} is empty (0 bytes)")
        try:
            image = _decode(data, name)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            damage = png_damage(data) if exc.errno is None or not isinstance(exc, OSError) else ""
            if damage:  # the decoder's own message ("not an image", "broken PNG") hides the real reason
                raise ImageError(f"{name} is a damaged PNG file: {damage}") from None
            raise
        damage = png_damage(data)
        if damage and "CRC" in damage:  # decoded, but from bytes that are not what was written
            raise ImageError(f"{name} is a damaged PNG file: {damage}")
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"no file at {source}") from None
    except NotARegularFile as exc:
        raise ImageError(f"{source} is {exc.kind}, not an image file") from None
    except FileTooLarge as exc:
        raise ImageError(f"{name} is refused as an image: {exc.strerror}") from None
    except PermissionError:
        raise ImageError(f"{name} cannot be read (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image in a format this app can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} has too many pixels to decode safely") from None
    except MemoryError:
        raise ImageError(f"{name} is too large to decode in memory") from None
    except OSError as exc:
        if exc.errno is not None:  # the system's refusal (decoders read from memory and raise without an errno)
            raise ImageError(f"cannot read {name}: {describe_os_error(exc)}") from None
        raise ImageError(f"{name} is corrupt or truncated ({_one_line(exc)})") from None
    except (SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name} is corrupt or truncated ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - a decoder may raise anything on a crafted file
        raise ImageError(f"{name} cannot be decoded ({type(exc).__name__}: {_one_line(exc)})") from None
    if image.width < 1 or image.height < 1:
        raise ImageError(f"{name} has no pixels")
    return image


#: Images with a longer side are first reduced (a box filter, by a whole factor) so that padding and
#: conversion to floats stay small whatever the aspect ratio: a 30000x20 strip is not padded at full size.
WORKING_SIDE = 1024
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "I", "F"}


_PLAIN_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I", "F"}
_EXOTIC_TO_PLAIN = {"La": "LA", "RGBa": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBX": "RGB"}


def _plain_mode(image: Image.Image, notes: list[str]) -> Image.Image:
    """Bring exotic modes (premultiplied alpha, CMYK, Lab, ...) to one that the conversion handles."""
    if image.mode in _PLAIN_MODES or image.mode.startswith("I;16"):
        return image
    source_mode = image.mode
    target = _EXOTIC_TO_PLAIN.get(source_mode, "RGBA")
    image = image.convert(target)
    notes.append(f"{source_mode} converted to {target}")
    return image


def _reduce_large(image: Image.Image, notes: list[str]) -> Image.Image:
    """Shrink an image whose longer side exceeds :data:`WORKING_SIDE` by a whole factor (box filter)."""
    side = max(image.width, image.height)
    if side <= WORKING_SIDE:
        return image
    factor = -(-side // WORKING_SIDE)
    if image.mode not in _REDUCIBLE:
        image = image.convert("I" if image.mode.startswith("I;16") else "L" if image.mode == "1" else "RGBA")
    before = (image.width, image.height)
    image = image.reduce(factor)
    notes.append(f"reduced from {before[0]}x{before[1]} to {image.width}x{image.height} (box filter) before conversion")
    return image


def _to_float_rgb_or_grey(image: Image.Image, colour: bool, notes: list[str]) -> np.ndarray:
    """To float32 in [0, 1]: ``(H, W)`` grey or ``(H, W, 3)`` RGB; alpha composited over the background."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(array)
        if not finite.all():
            notes.append(f"{int((~finite).sum())} NaN or infinite pixel value(s) set to the lowest value")
        lo = float(array[finite].min()) if finite.any() else 0.0
        hi = float(array[finite].max()) if finite.any() else 0.0
        array = np.where(finite, array, lo)
        notes.append(f"{image.mode} pixel values rescaled from [{lo:g}, {hi:g}] to [0, 1]")
        array = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
        return np.repeat(array[..., None], 3, axis=2).astype(np.float32) if colour else array.astype(np.float32)
    if image.mode == "P":
        image = image.convert("RGBA")
        notes.append("palette expanded")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        array = np.asarray(rgba, dtype=np.float32) / 255.0
        alpha = array[..., 3:4]
        if np.all(alpha >= 1.0):
            notes.append("alpha channel ignored (fully opaque)")
            rgb = array[..., :3]
        else:
            # Composite over the colour the opaque part is not: ink usually sits on transparent paper.
            opaque = alpha[..., 0] > 0.5
            ink = array[..., :3][opaque].mean() if opaque.any() else 1.0
            background = 0.0 if ink > 0.5 else 1.0
            rgb = array[..., :3] * alpha + background * (1 - alpha)
            notes.append(f"transparent pixels composited over {'black' if background == 0 else 'white'}")
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if colour:
        return rgb
    if image.mode not in ("L", "1", "LA"):
        notes.append(f"{image.mode} converted to grey")
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def convert_image(
    image: Image.Image,
    shape: tuple[int, int, int],
    num_values: int,
    invert: str = "auto",
) -> ConvertedImage:
    """Convert a decoded image to ``shape`` ``(C, H, W)`` with ``num_values`` levels per channel.

    The image is padded to a square (with its own background), resized with a box/Lanczos filter, put in
    the models' convention (light strokes on a dark background; ``invert="auto"`` inverts dark-on-light
    images), then quantised: a 0.5 threshold for binary models, ``num_values`` even levels otherwise.
    """
    c, h, w = shape
    notes: list[str] = []
    source_size = (image.width, image.height)
    source_mode = image.mode
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames > 1:
        notes.append(f"the first of {frames} frames used")
    image = ImageOps.exif_transpose(image) if hasattr(image, "getexif") else image
    image = _reduce_large(_plain_mode(image, notes), notes)
    array = _to_float_rgb_or_grey(image, colour=(c == 3), notes=notes)
    grey = array if array.ndim == 2 else array.mean(axis=2)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    do_invert = background > 0.5 if invert == "auto" else invert == "yes"
    if do_invert:
        array = 1.0 - array
        background = 1.0 - background
        notes.append("inverted (dark strokes on a light background became light on dark)")
    ih, iw = array.shape[:2]
    if (ih, iw) != (h, w):
        side = max(ih, iw)
        if ih != iw and h == w:
            pad = np.full((side, side) + array.shape[2:], background, dtype=np.float32)
            top, left = (side - ih) // 2, (side - iw) // 2
            pad[top : top + ih, left : left + iw] = array
            array = pad
            notes.append(f"padded from {iw}x{ih} to a {side}x{side} square")
        mode_image = Image.fromarray(np.clip(array * 255.0, 0, 255).round().astype(np.uint8))
        resample = Image.Resampling.BOX if array.shape[0] > h else Image.Resampling.NEAREST
        mode_image = mode_image.resize((w, h), resample=resample)
        array = np.asarray(mode_image, dtype=np.float32) / 255.0
        notes.append(f"resized from {source_size[0]}x{source_size[1]} to {w}x{h}")
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    if array.shape[0] != c:
        array = np.repeat(array.mean(axis=0, keepdims=True), c, axis=0)
    if num_values == 2:
        values = (array > 0.5).astype(np.uint8)
        notes.append("binarized at 0.5")
    else:
        values = np.clip(np.round(array * (num_values - 1)), 0, num_values - 1).astype(np.uint8)
        if num_values != 256:
            notes.append(f"quantised to {num_values} levels")
    if not notes:
        notes.append("used as it is")
    return ConvertedImage(values, notes, source_size, source_mode)


def load_image(
    source: str | Path | bytes, shape: tuple[int, int, int], num_values: int, invert: str = "auto"
) -> ConvertedImage:
    """Read an image file (or bytes) and convert it for a model; :class:`ImageError` says why not."""
    image = open_image(source)
    try:
        return convert_image(image, shape, num_values, invert)
    except ImageError:
        raise
    except Exception as exc:  # an exotic mode Pillow decodes but cannot convert
        raise ImageError(f"cannot convert this {image.mode} image: {exc}") from None


def to_png_array(values: np.ndarray, num_values: int) -> np.ndarray:
    """``(C, H, W)`` values to an 8-bit ``(H, W)`` or ``(H, W, 3)`` array for saving or display."""
    scaled = (values.astype(np.float32) * (255.0 / (num_values - 1))).round().astype(np.uint8)
    return scaled[0] if scaled.shape[0] == 1 else scaled.transpose(1, 2, 0)


def grid_image(images: np.ndarray, num_values: int, columns: int | None = None, scale: int = 4, pad: int = 1) -> Image.Image:
    """Tile ``(N, C, H, W)`` images into one PIL image (each scaled up ``scale`` times, nearest neighbour)."""
    n, c, h, w = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    tile_h, tile_w = h * scale + pad, w * scale + pad
    canvas = np.full((rows * tile_h + pad, columns * tile_w + pad, 3), 96, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        tile = to_png_array(images[i], num_values)
        if tile.ndim == 2:
            tile = np.repeat(tile[..., None], 3, axis=2)
        tile = tile.repeat(scale, axis=0).repeat(scale, axis=1)
        y, x = pad + r * tile_h, pad + col * tile_w
        canvas[y : y + h * scale, x : x + w * scale] = tile
    return Image.fromarray(canvas)


def save_png(image: Image.Image, path: str | Path) -> None:
    """Save a PNG atomically."""
    from app.core.files import atomic_path

    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
