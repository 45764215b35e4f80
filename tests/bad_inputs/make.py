"""The bad-input corpus: files that people hand the app, made here from code, never downloaded.

Each :class:`Case` is a file's name and bytes, and what the app must do with it: ``"converted"`` (a faithful
conversion, with notes) or ``"refused"`` (the project's own error, one line, saying why: ``reason`` is a piece
of that line). Cases that once broke the app name what they broke in ``found``; every bug fixed adds one.

To try the corpus by hand (in the app's score view, with ``ar-explorer score``, ...)::

    python tests/bad_inputs/make.py /tmp/bad-inputs
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    """One file of the corpus and what the app must make of it."""

    name: str
    data: bytes
    expect: str  # "converted" | "refused"
    reason: str = ""  # lower-case piece of the refusal's message
    found: str = ""  # for a regression case: what it broke before the fix

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        path.write_bytes(self.data)
        return path


# images ----------------------------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _digit(size: int = 28) -> np.ndarray:
    """A dark '1'-like stroke on white paper: what a photo of a written digit looks like."""
    array = np.full((size, size), 255, dtype=np.uint8)
    array[size // 5 : size - size // 5, size // 2 - max(1, size // 14) : size // 2 + max(1, size // 14)] = 0
    return array


def png_header_only(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels: a decompression bomb in a few hundred bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + b"\x00" * ((width * bit_depth + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(min(height, 64))) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


def _float_with_nan() -> bytes:
    array = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    array[0, 0] = np.nan
    array[1, 1] = np.inf
    return encode(Image.fromarray(array, mode="F"), "TIFF")


def _dds_unknown_format() -> bytes:
    data = bytearray(encode(Image.new("L", (4, 4), 7), "DDS"))
    data[80:84] = struct.pack("<I", 0)  # pixel format flags
    return bytes(data)


def _exif_rotated() -> bytes:
    image = Image.fromarray(_digit(40)[:, :30])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    return encode(image, "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [Image.fromarray(np.roll(_digit(), 3 * i, axis=1)).convert("P") for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _png_with_bad_crc(chunk: bytes) -> bytes:
    """A valid PNG whose ``chunk`` (IHDR, IDAT...) has one CRC byte flipped: damaged bytes, not a format."""
    data = bytearray(encode(Image.fromarray(_digit())))
    start = data.index(chunk) - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    data[start + 8 + length] ^= 0xFF
    return bytes(data)


def _transparent_ink() -> bytes:
    """Black ink on a transparent background (a typical export of a drawing program)."""
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., 3] = 255 - _digit()
    return encode(Image.fromarray(rgba, mode="RGBA"))


def images() -> list[Case]:
    """Images of every size and mode that the app converts, and files that it refuses."""
    digit = Image.fromarray(_digit())
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    truncated_png = encode(noise)
    converted = [
        Case("grey.png", encode(digit), "converted"),
        Case("1x1.png", encode(Image.new("L", (1, 1), 255)), "converted"),
        Case("1x1-rgba.png", encode(Image.new("RGBA", (1, 1), (0, 0, 0, 0))), "converted"),
        Case("bilevel.png", encode(digit.convert("1")), "converted"),
        Case("palette.gif", encode(digit.convert("P")), "converted"),
        Case("palette-transparent.png", encode(digit.convert("P"), transparency=255), "converted"),
        Case("rgb.jpg", encode(digit.convert("RGB"), "JPEG"), "converted"),
        Case("rgba-ink.png", _transparent_ink(), "converted"),
        Case("grey-alpha.png", encode(digit.convert("LA")), "converted"),
        Case("grey16.png", encode(Image.fromarray(_digit().astype(np.uint16) * 257)), "converted"),
        Case("int32.tiff", encode(Image.fromarray(_digit().astype(np.int32) * 1000), "TIFF"), "converted"),
        Case("float.tiff", encode(Image.fromarray(_digit().astype(np.float32) / 255), "TIFF"), "converted"),
        Case("float-nan.tiff", _float_with_nan(), "converted",
             found="NaN pixels made the rescaling NaN: '[nan, nan]' and an arbitrary image"),
        Case("cmyk.jpg", encode(digit.convert("CMYK"), "JPEG"), "converted"),
        Case("bitmap.bmp", encode(digit.convert("RGB"), "BMP"), "converted"),
        Case("photo.webp", encode(noise, "WEBP"), "converted"),
        Case("strip-1x1000.png", encode(Image.new("L", (1, 1000), 40)), "converted"),
        Case("strip-1000x1.png", encode(Image.new("RGB", (1000, 1), (9, 9, 9))), "converted"),
        Case("large-3000x2000.png", encode(Image.new("L", (3000, 2000), 0)), "converted"),
        Case("strip-32529x20.gif", encode(Image.new("P", (32529, 20), 0)), "converted",
             found="padded to a 32529x32529 float square before resizing: 20 s and several GB of memory"),
        Case("animated.gif", _animated_gif(), "converted"),
        Case("exif-rotated.jpg", _exif_rotated(), "converted"),
    ]
    refused = [
        Case("empty.png", b"", "refused", "empty"),
        Case("notes.png", b"shopping list: eggs, milk\n", "refused", "not an image"),
        Case("error-page.png", b"<html><body><h1>404 Not Found</h1></body></html>\n", "refused", "not an image"),
        Case("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "refused", "not an image"),
        Case("truncated.png", truncated_png[: len(truncated_png) // 3], "refused", "truncated"),
        Case("truncated.jpg", encode(noise, "JPEG")[:400], "refused", "truncated"),
        Case("signature-only.png", b"\x89PNG\r\n\x1a\n", "refused", "not an image"),
        Case("bomb-12000.png", png_header_only(12000, 12000), "refused", "too many pixels"),
        Case("bomb-60000.png", png_header_only(60000, 60000)[:80], "refused", "too many pixels"),
        Case("drawing.eps", encode(digit, "EPS"), "refused", "ghostscript",
             found="handed to Ghostscript, an interpreter of untrusted code, where it is installed"),
        Case("texture.dds", _dds_unknown_format(), "refused", "cannot be decoded",
             found="NotImplementedError escaped load_image"),
        Case("weights.png", pickle.dumps({"not": "an image"}), "refused", "not an image"),
        Case("bad-crc-header.png", _png_with_bad_crc(b"IHDR"), "refused", "'ihdr' chunk fails its crc check",
             found="'not an image in a format this app can read': the decoder's message hid the damaged chunk"),
        Case("bad-crc-pixels.png", _png_with_bad_crc(b"IDAT"), "refused", "'idat' chunk fails its crc check",
             found="decoded without a word from bytes whose checksum says they were damaged"),
        Case("random.png", bytes(rng.integers(0, 256, 4096, dtype=np.uint8)), "refused", ""),
    ]
    return converted + refused


# orderings -------------------------------------------------------------------------------------------------------


def _ordering_json(height: int, width: int, order: object, **extra) -> bytes:
    return json.dumps({"height": height, "width": width, "order": order, **extra}).encode()


def raster_pairs(height: int, width: int) -> list[list[int]]:
    return [[r, c] for r in range(height) for c in range(width)]


def orderings(height: int = 4, width: int = 4) -> list[Case]:
    """Ordering files for a ``height`` x ``width`` model: one good one (with a byte-order mark), the rest refused."""
    good = raster_pairs(height, width)
    swapped = [list(p) for p in good]
    duplicate = [list(p) for p in good]
    duplicate[-1] = [0, 0]
    out_of_range = [list(p) for p in good]
    out_of_range[3] = [height, 0]
    negative = [list(p) for p in good]
    negative[0] = [-1, 0]
    return [
        Case("raster-bom.json", b"\xef\xbb\xbf" + _ordering_json(height, width, good), "converted"),
        Case("reversed.json", _ordering_json(height, width, swapped[::-1]), "converted"),
        Case("empty.json", b"", "refused", "not valid json"),
        Case("malformed.json", b'{"height": 4, "width": 4, "order": [[0, 0], ', "refused", "not valid json"),
        Case("list.json", b"[1, 2, 3]", "refused", "json object"),
        Case("missing-keys.json", b'{"order": []}', "refused", "missing"),
        Case("wrong-size.json", _ordering_json(height + 1, width, raster_pairs(height + 1, width)), "refused",
             f"{height + 1}x{width}"),
        Case("short.json", _ordering_json(height, width, good[:-2]), "refused", "missing"),
        Case("duplicates.json", _ordering_json(height, width, duplicate), "refused", "more than once"),
        Case("out-of-range.json", _ordering_json(height, width, out_of_range), "refused", "outside"),
        Case("negative.json", _ordering_json(height, width, negative), "refused", "outside"),
        Case("strings.json", _ordering_json(height, width, [["0", "0"], *good[1:]]), "refused", "pair of integers"),
        Case("floats.json", _ordering_json(height, width, [[0.5, 0], *good[1:]]), "refused", "pair of integers"),
        Case("bools.json", _ordering_json(height, width, [[True, False], *good[1:]]), "refused", "pair of integers"),
        Case("nulls.json", _ordering_json(height, width, [None, *good[1:]]), "refused", "pair of integers"),
        Case("triples.json", _ordering_json(height, width, [[0, 0, 0], *good[1:]]), "refused", "pair of integers"),
        Case("flat.json", _ordering_json(height, width, list(range(height * width))), "refused", "pair of integers"),
        Case("order-object.json", _ordering_json(height, width, {"0": [0, 0]}), "refused", "list"),
        Case("height-zero.json", _ordering_json(0, width, []), "refused", "positive integer"),
        Case("height-string.json", _ordering_json("4", width, good), "refused", "positive integer"),
        Case("height-huge.json", _ordering_json(10**20, width, good), "refused", "positive integer"),
        Case("nan.json", b'{"height": NaN, "width": 4, "order": []}', "refused", "positive integer"),
        Case("huge-int.json", _ordering_json(height, width, [[10**30, 0], *good[1:]]), "refused", "outside",
             found="OverflowError: Python int too large to convert to C long"),
        Case("deep.json", b"[" * 100_000 + b"]" * 100_000, "refused", "nested too deeply",
             found="RecursionError escaped Ordering.load"),
        Case("latin1.json", '{"name": "caf\xe9"}'.encode("latin-1"), "refused", "cannot read"),
    ]


@dataclass(frozen=True)
class SpecialFile:
    """A path that is not a regular file, which a careless or hostile user hands the app."""

    kind: str  # "fifo" | "symlink-loop" | "dangling-link" | "folder" | "device"
    reason: str  # lower-case piece of the refusal
    found: str = ""

    def make(self, path: Path) -> Path:
        """Create it at ``path`` (a device is linked: /dev/zero, which never ends)."""
        import os

        if self.kind == "fifo":
            os.mkfifo(path)
        elif self.kind == "symlink-loop":
            os.symlink(path.name, path)
        elif self.kind == "dangling-link":
            os.symlink(path.with_name(path.name + ".gone"), path)
        elif self.kind == "folder":
            path.mkdir()
        elif self.kind == "device":
            os.symlink("/dev/zero", path)
        return path


def special_files() -> list[SpecialFile]:
    """Paths that are not files: each must be refused at once with the right reason, never read."""
    return [
        SpecialFile("fifo", "named pipe", found="a FIFO hung the CLI, and hung the app before its window opened"),
        SpecialFile("device", "a device", found="--ordering /dev/zero read until memory ran out"),
        SpecialFile("symlink-loop", "loop of symbolic links", found="'corrupt or truncated ([Errno 40] ...)'"),
        SpecialFile("dangling-link", "no "),
        SpecialFile("folder", "folder"),
    ]


def write_huge_file(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes (made instantly, whatever its size)."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


# checkpoints -----------------------------------------------------------------------------------------------------


def tiny_model(hidden: int = 8, shape: tuple[int, int, int] = (1, 4, 4)):
    """A tiny MADE from the built-in plugin (a few hundred weights)."""
    import torch

    from plugins.made import SPEC

    torch.manual_seed(0)
    return SPEC.create(SPEC.make_config(shape, 2, {"hidden": [hidden], "num_masks": 1}))


def tiny_checkpoint(
    folder: Path,
    name: str = "tiny",
    hidden: int = 8,
    meta: dict | None = None,
    shape: tuple[int, int, int] = (1, 4, 4),
) -> Path:
    """Save a valid tiny checkpoint in ``folder``; returns the ``.safetensors`` path."""
    from app.core.checkpoints import save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_model(hidden, shape)
    info = save_checkpoint(model, folder / name, {"dataset": "synthetic-digits", **(meta or {})})
    return info.weights


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    """A safetensors file's header (parsed) and its data section."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def join_safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _edit_header(valid: bytes, edit: Callable[[dict], None]) -> bytes:
    header, body = split_safetensors(valid)
    edit(header)
    return join_safetensors(header, body)


def _edit_config(valid: bytes, edit: Callable[[dict], None]) -> bytes:
    def change(header: dict) -> None:
        embedded = json.loads(header["__metadata__"]["ar_explorer"])
        edit(embedded)
        header["__metadata__"]["ar_explorer"] = json.dumps(embedded)
        header["__metadata__"].pop("ar_explorer_record", None)

    return _edit_header(valid, change)


def _first_tensor(header: dict) -> dict:
    return header[sorted(k for k in header if k != "__metadata__")[0]]


class _CreatesFile:
    """Unpickling this calls ``open(marker, "w")``: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_that_creates(marker: Path) -> bytes:
    """A plain pickle whose loading creates ``marker``."""
    return pickle.dumps({"state_dict": _CreatesFile(marker)}, protocol=4)


def torch_file_that_creates(marker: Path) -> bytes:
    """A ``torch.save`` file (zip + pickle) whose loading creates ``marker``."""
    import torch

    buffer = io.BytesIO()
    torch.save({"state_dict": _CreatesFile(marker)}, buffer)
    return buffer.getvalue()


def _relabel(valid: bytes, old: str, new: str) -> bytes:
    """Every tensor stored as ``old`` relabelled ``new`` (a dtype of the same size: the bytes still fit)."""

    def change(header: dict) -> None:
        for key, entry in header.items():
            if key != "__metadata__" and entry["dtype"] == old:
                entry["dtype"] = new

    return _edit_header(valid, change)


def checkpoint_bytes(model=None, half: bool = False) -> bytes:
    """The bytes of a valid checkpoint of ``model`` (a tiny MADE by default), in float16 with ``half`` (as the
    shipped ones are stored)."""
    import tempfile

    from app.core.checkpoints import save_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        info = save_checkpoint(model or tiny_model(), Path(folder) / "ckpt", {"dataset": "synthetic-digits"}, half=half)
        return info.weights.read_bytes()


def tiny_gated_pixelcnn():
    """A small Gated PixelCNN (8 channels, 3 layers) of 8x8 images."""
    import torch

    from plugins.gated_pixelcnn import SPEC

    torch.manual_seed(0)
    return SPEC.create(SPEC.make_config((1, 8, 8), 2, tiny=True))


def lying_checkpoints(valid: bytes) -> list[Case]:
    """Headers that lie: a config asking for far more than the weights (which would take gigabytes or minutes
    to build), and dtypes that relabel the bytes."""
    half = checkpoint_bytes(half=True)
    gated = checkpoint_bytes(tiny_gated_pixelcnn())

    def gated_claims(key: str, value: int) -> bytes:
        return _edit_config(gated, lambda m: m["config"]["hparams"].__setitem__(key, value))

    return [
        Case("claims-2000-channels.safetensors", gated_claims("channels", 2000), "refused",
             "does not describe its weights",
             found="a 2 MB checkpoint claiming 2000 channels made the loader allocate 5.6 GB and take 45 s"),
        Case("claims-a-million-layers.safetensors", gated_claims("layers", 10**6), "refused",
             "does not describe its weights", found="a config of 10^6 layers never finished building"),
        Case("claims-huge-hidden-layer.safetensors",
             _edit_config(valid, lambda m: m["config"]["hparams"].__setitem__("hidden", [2000000])), "refused",
             "does not describe its weights"),
        Case("claims-a-million-hidden-layers.safetensors",
             _edit_config(valid, lambda m: m["config"]["hparams"].__setitem__("hidden", [8] * 10**6)), "refused",
             "a list of 1000000 items"),
        Case("claims-nan-size.safetensors",
             _edit_config(valid, lambda m: m["config"]["hparams"].__setitem__("num_masks", float("nan"))),
             "refused", "implausible"),
        Case("claims-overflowing-size.safetensors",
             _edit_config(valid, lambda m: m["config"]["hparams"].__setitem__("num_masks", 10**40)),
             "refused", "implausible"),
        Case("half-relabelled-bf16.safetensors", _relabel(half, "F16", "BF16"), "refused", "stored as bf16",
             found="float16 bytes read as bfloat16 loaded silently and gave p = 0.5 everywhere"),
        Case("float-relabelled-int.safetensors", _relabel(valid, "F32", "I32"), "refused", "stored as i32",
             found="integers were cast to floats, and the error later blamed the model"),
        Case("shape-lies.safetensors",
             _edit_header(valid, lambda h: _first_tensor(h).__setitem__("shape", [1])), "refused", "do not take"),
    ]


def checkpoints(valid: bytes) -> list[Case]:
    """Mutations of a valid tiny checkpoint (``valid``: the bytes of its ``.safetensors``), each refused."""
    header, body = split_safetensors(valid)
    header_len = int.from_bytes(valid[:8], "little")

    def offsets(value):
        return lambda h: _first_tensor(h).__setitem__("data_offsets", value)

    def shape(value):
        return lambda h: _first_tensor(h).__setitem__("shape", value)

    return [
        Case("empty.safetensors", b"", "refused", "empty or truncated"),
        Case("seven-bytes.safetensors", valid[:7], "refused", "empty or truncated"),
        Case("header-cut.safetensors", valid[: 8 + header_len // 2], "refused", "truncated"),
        Case("data-cut.safetensors", valid[: 8 + header_len + len(body) // 2], "refused", "truncated"),
        Case("last-byte-cut.safetensors", valid[:-1], "refused", "truncated"),
        Case("length-lies.safetensors", struct.pack("<Q", 2**62) + valid[8:], "refused", "bad header length"),
        Case("header-not-json.safetensors", struct.pack("<Q", 16) + b"\xff" * 16 + body, "refused", "not json"),
        Case("header-list.safetensors", join_safetensors([], body), "refused", "not a safetensors"),  # type: ignore[arg-type]
        Case("offsets-past-end.safetensors", _edit_header(valid, offsets([0, len(body) + 1000])), "refused",
             "past its end"),
        Case("offsets-reversed.safetensors", _edit_header(valid, offsets([8, 4])), "refused", "past its end"),
        Case("offsets-overlap.safetensors", _edit_header(valid, offsets([0, 4])), "refused", "corrupt"),
        Case("offsets-strings.safetensors", _edit_header(valid, offsets(["0", "4"])), "refused", "malformed",
             found="TypeError: '>' not supported between instances of 'str' and 'int'"),
        Case("offsets-number.safetensors", _edit_header(valid, offsets(5)), "refused", "malformed",
             found="TypeError: object of type 'int' has no len()"),
        Case("shape-huge.safetensors", _edit_header(valid, shape([10**12, 10**12])), "refused", ""),
        Case("dtype-lies.safetensors", _edit_header(valid, lambda h: _first_tensor(h).__setitem__("dtype", "F64")),
             "refused", "corrupt"),
        Case("metadata-string.safetensors", _edit_header(valid, lambda h: h.__setitem__("__metadata__", "x")),
             "refused", "metadata", found="AttributeError: 'str' object has no attribute 'get'"),
        Case("no-config.safetensors", _edit_header(valid, lambda h: h.__setitem__("__metadata__", {})),
             "refused", "not an ar explorer checkpoint"),
        Case("config-list.safetensors",
             _edit_header(valid, lambda h: h["__metadata__"].__setitem__("ar_explorer", "[1, 2]")),
             "refused", "corrupt model config", found="AttributeError: 'list' object has no attribute 'get'"),
        Case("other-size.safetensors",
             _edit_config(valid, lambda m: m["config"]["hparams"].__setitem__("hidden", [16])), "refused",
             "do not fit"),
        Case("other-model.safetensors", _edit_config(valid, lambda m: m.__setitem__("model", "pixelcnn")), "refused",
             "'direct'; it takes: channels, first_kernel"),
        Case("unknown-model.safetensors", _edit_config(valid, lambda m: m.__setitem__("model", "no-such-model")),
             "refused", "no loaded plugin provides it"),
        Case("config-shape-text.safetensors",
             _edit_config(valid, lambda m: m["config"].__setitem__("shape", [1, "x", 4])), "refused",
             "invalid model config"),
        Case("config-implausible.safetensors",
             _edit_config(valid, lambda m: m["config"].__setitem__("shape", [3, 4096, 4096])), "refused",
             "implausible"),
        Case("pickle-renamed.safetensors", pickle.dumps({"w": [1.0, 2.0]}), "refused", "pickle"),
        Case("zip-renamed.safetensors", b"PK\x03\x04" + b"\x00" * 64, "refused", "pickle"),
        *lying_checkpoints(valid),
    ]


def nan_checkpoint(folder: Path) -> Path:
    """A checkpoint whose weights hold a NaN."""
    import torch

    from app.core.checkpoints import save_checkpoint

    model = tiny_model()
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    return save_checkpoint(model, folder / "nan-weights", {"dataset": "synthetic-digits"}).weights


# plugins ---------------------------------------------------------------------------------------------------------

#: A complete, valid plugin: a fully visible sigmoid belief net over a raster ordering. ``{forward}`` is the
#: body of its forward pass, ``{mask}`` its connectivity and ``{name}`` the model's name; the broken plugins
#: below change one thing each.
PLUGIN_TEMPLATE = '''
import torch
from torch import nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec


class Tiny(ARModel):
    def __init__(self, config):
        super().__init__(config, Bernoulli())
        d = config.num_dims
        generator = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(0.5 * torch.randn(d, d, generator=generator))
        self.bias = nn.Parameter(torch.zeros(d))
        self.register_buffer("mask", {mask}, persistent=False)

    def forward(self, x, cond=None, ordering=None):
        b = x.shape[0]
        flat = self.normalize(x).reshape(b, -1)
        logits = flat @ (self.weight * self.mask).T + self.bias
{forward}
{methods}


SPEC = ModelSpec(
    name="{name}",
    title="{title}",
    description="A fully visible sigmoid belief net: the plainest autoregressive model.",
    build=Tiny,
    tiny_hparams={{"kit_shape": (1, 2, 3)}},
    sampler_modes={modes},
)


@hookimpl
def ar_explorer_models():
{hook}
'''

_GOOD_FORWARD = "        return logits.reshape(b, *self.shape, 1)"
#: Output d sees inputs 0 .. d-1: the autoregressive property.
GOOD_MASK = "torch.tril(torch.ones(d, d), -1)"
#: Mask bugs, as the conformance kit must find them: an output that sees its own input, or the next one.
MASK_SEES_ITSELF = "torch.tril(torch.ones(d, d), 0)"
MASK_SEES_THE_NEXT = "torch.tril(torch.ones(d, d), -1) + torch.diag(torch.ones(d - 1), 1)"


def plugin_source(
    name: str = "tiny-fvsbn",
    forward: str = _GOOD_FORWARD,
    hook: str = "    return [SPEC]",
    mask: str = GOOD_MASK,
    title: str = "Tiny FVSBN",
    methods: str = "",
    modes: tuple[str, ...] = (),
) -> str:
    return PLUGIN_TEMPLATE.format(
        name=name, forward=forward, hook=hook, mask=mask, title=title, methods=methods, modes=repr(modes)
    )


def _cached_sampler(probs_body: str) -> str:
    """Methods giving the model a ``cached`` sampler whose ``probs`` runs ``probs_body``."""
    return f'''
    def make_sampler(self, x, cond=None, ordering=None, mode="naive"):
        from app.core.sampling import NaiveSampler

        class Cached(NaiveSampler):
            def probs(self, step):
{probs_body}

        return Cached(self, x, cond, ordering) if mode == "cached" else super().make_sampler(x, cond, ordering, mode)
'''


@dataclass(frozen=True)
class PluginCase:
    """A plugin module's source, and a lower-case piece of what the registry or the kit must say about it."""

    module: str
    source: str
    problem: str
    found: str = ""


def broken_plugins() -> list[PluginCase]:
    """Plugins that fail to load, or whose hooks misbehave: each must be reported with its reason."""
    return [
        PluginCase("bad_import", "import no_such_module_for_ar_explorer\n", "no_such_module_for_ar_explorer"),
        PluginCase("bad_syntax", "def broken(:\n    pass\n", "syntaxerror"),
        PluginCase("bad_exit", "raise SystemExit(3)\n", "systemexit"),
        PluginCase("bad_hook_raises", plugin_source("tiny-raising-hook", hook="    raise RuntimeError('the hook blew up')"),
                   "the hook blew up"),
        PluginCase("bad_hook_dict", plugin_source("tiny-dict-hook", hook="    return {'model': SPEC}"), "expected a list"),
        PluginCase("bad_hook_items", plugin_source("tiny-mixed-hook", hook="    return ['not a spec', SPEC]"),
                   "expected modelspec"),
        PluginCase("bad_hook_signature", plugin_source("tiny-signature").replace(
            "def ar_explorer_models():", "def ar_explorer_models(registry):"), "cannot be registered",
                   found="pluggy's message spanned three lines of the one-line plugin notice"),
        PluginCase("bad_duplicate", plugin_source(name="made"), "already provided by plugin"),
        PluginCase("bad_interrupt", "raise KeyboardInterrupt\n", "keyboardinterrupt",
                   found="taken for the user's Ctrl-C: the command ended with exit 130, 'interrupted'"),
    ]


def misbehaving_models() -> dict[str, tuple[str, str]]:
    """Plugins that load, whose models misbehave when used: module -> (source, piece of the ModelError)."""
    return {
        "model_raises": (
            plugin_source("tiny-raises", forward="        raise RuntimeError('the forward pass fell over')"),
            "the forward pass fell over",
        ),
        "model_nan": (
            plugin_source("tiny-nan", forward="        return torch.full((b, *self.shape, 1), float('nan'))"),
            "nan",
        ),
        "model_shape": (
            plugin_source("tiny-shape", forward="        return logits.reshape(b, -1)"),
            "shape",
        ),
        "model_type": (
            plugin_source("tiny-type", forward="        return logits.tolist()"),
            "list",
        ),
    }


def misbehaving_samplers() -> dict[str, tuple[str, str]]:
    """Plugins whose own ``cached`` sampler misbehaves: module -> (source, piece of the ModelError)."""
    return {
        "sampler_raises": (
            plugin_source("tiny-stale-cache", modes=("cached",),
                          methods=_cached_sampler("                raise KeyError('the cache is stale')")),
            "the cache is stale",
        ),
        "sampler_shape": (
            plugin_source("tiny-flat-probs", modes=("cached",),
                          methods=_cached_sampler("                return super().probs(step).reshape(-1)")),
            "shape",
        ),
    }


# the whole corpus, on disk ---------------------------------------------------------------------------------------


def write_corpus(folder: Path) -> list[Path]:
    """Write every case to ``folder`` (images/, orderings/, checkpoints/, plugins/) and an index.json."""
    written: list[Path] = []
    index: dict[str, list[dict]] = {}
    scratch = folder / "checkpoints"
    valid = tiny_checkpoint(scratch, "valid-tiny-made")
    groups = {"images": images(), "orderings": orderings(), "checkpoints": checkpoints(valid.read_bytes())}
    for group, cases in groups.items():
        target = folder / group
        target.mkdir(parents=True, exist_ok=True)
        for case in cases:
            written.append(case.write(target))
            index.setdefault(group, []).append(
                {"file": case.name, "expect": case.expect, "reason": case.reason, "found": case.found}
            )
    plugin_dir = folder / "plugins"
    plugin_dir.mkdir(exist_ok=True)
    for case in broken_plugins():
        path = plugin_dir / f"{case.module}.py"
        path.write_text(case.source)
        written.append(path)
        index.setdefault("plugins", []).append({"file": path.name, "expect": "reported", "reason": case.problem})
    for module, (source, problem) in {**misbehaving_models(), **misbehaving_samplers()}.items():
        path = plugin_dir / f"{module}.py"
        path.write_text(source)
        written.append(path)
        index.setdefault("plugins", []).append({"file": path.name, "expect": "ModelError", "reason": problem})
    special = folder / "special"
    special.mkdir(exist_ok=True)
    for item in special_files():
        path = special / f"{item.kind}.png"
        if not path.exists() and not path.is_symlink():
            written.append(item.make(path))
        index.setdefault("special", []).append({"file": path.name, "expect": "refused", "reason": item.reason,
                                                "found": item.found})
    (folder / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return written


if __name__ == "__main__":  # pragma: no cover - a convenience for trying the corpus by hand
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    paths = write_corpus(out)
    print(f"wrote {len(paths)} files to {out}")


# command-line options ----------------------------------------------------------------------------------------------

#: Values a careless or hostile user types for a number: each kind of option refuses all of its list.
BAD_NUMBERS = {
    "positive whole": ["0", "-5", "nan", "inf", "1.5", "1e3", "abc", "", "99999999999999999999999"],
    "whole or 0": ["-5", "-1", "nan", "inf", "0.5", "99999999999999999999999"],
    "seed": ["-1", "18446744073709551616", "4294967296", "nan", "1.5"],
    "positive number": ["0", "-1", "nan", "inf", "-inf", "1e400", "abc"],
    "number or 0": ["-1", "-0.5", "nan", "inf", "1e400"],
    "list of whole numbers": ["0", "1,0", "-1", "1,,nan", ",", "1,99999"],
}

#: Every numeric option of every command, as ``(argv before the option, option, kind)``. The argv is complete
#: but for the option, so that the option alone is wrong; ``{ckpt}`` and ``{out}`` are filled in by the tests.
NUMERIC_OPTIONS = [
    *[(["train", "--model", "made", "--dataset", "synthetic-digits", "--out", "{out}"], option, kind)
      for option, kind in (("--epochs", "positive number"), ("--batch-size", "positive whole"),
                           ("--lr", "positive number"), ("--max-minutes", "positive number"),
                           ("--eval-every", "whole or 0"), ("--log-every", "positive whole"),
                           ("--limit", "whole or 0"), ("--valid-limit", "whole or 0"), ("--seed", "seed"))],
    *[(["sample", "--checkpoint", "{ckpt}", "--out", "{out}"], option, kind)
      for option, kind in (("--n", "positive whole"), ("--temperature", "number or 0"), ("--seed", "seed"),
                           ("--label", "whole or 0"), ("--scale", "positive whole"))],
    *[(["score", "{image}", "--checkpoint", "{ckpt}"], option, kind)
      for option, kind in (("--seed", "seed"), ("--label", "whole or 0"))],
    *[(["eval", "--checkpoint", "{ckpt}"], option, kind)
      for option, kind in (("--limit", "whole or 0"), ("--subset", "whole or 0"), ("--seed", "seed"))],
    *[(["complete", "test:0", "--checkpoint", "{ckpt}", "--known", "top-half", "--out", "{out}"], option, kind)
      for option, kind in (("--n", "positive whole"), ("--temperature", "number or 0"), ("--seed", "seed"),
                           ("--label", "whole or 0"), ("--scale", "positive whole"))],
    *[(["fisher", "test:0", "test:1", "--checkpoint", "{ckpt}", "--out", "{out}"], option, kind)
      for option, kind in (("--steps", "positive whole"), ("--neighbours", "positive whole"),
                           ("--scale", "positive whole"))],
    *[(["fisher-decoder", "--checkpoint", "{ckpt}", "--out", "{out}"], option, kind)
      for option, kind in (("--images", "whole or 0"), ("--reference", "positive whole"), ("--dim", "positive whole"),
                           ("--hidden", "positive whole"), ("--epochs", "positive whole"),
                           ("--batch-size", "positive whole"), ("--seed", "seed"))],
    *[(["bench", "--model", "made"], option, kind)
      for option, kind in (("--budget", "positive number"), ("--batches", "list of whole numbers"))],
    *[(["lessons"], option, kind)
      for option, kind in (("--samples-per-label", "positive whole"), ("--superres-images", "positive whole"))],
    ([], "--after", "number or 0"),
    ([], "--scale", "positive number"),
]


# a slow third-party model ------------------------------------------------------------------------------------------

#: A PixelCNN from a third party, with no cached sampler: every step is a full forward pass, through layers
#: slow enough (``channels``, ``layers``) that closing the window always falls in the middle of one; with
#: ``stall`` seconds, its forward pass is one call that no layer boundary interrupts.
SLOW_PLUGIN = '''
import time

import torch
from torch import nn

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec


class Masked(nn.Conv2d):
    def __init__(self, cin, cout, k, kind):
        super().__init__(cin, cout, k, padding=k // 2)
        mask = torch.ones_like(self.weight)
        mask[:, :, k // 2, k // 2 + (kind == "B"):] = 0
        mask[:, :, k // 2 + 1:] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class SlowPixelCNN(ARModel):
    def __init__(self, config):
        super().__init__(config, Bernoulli())
        hp = config.hparams
        ch, layers, self.stall = int(hp.get("channels", 8)), int(hp.get("layers", 2)), float(hp.get("stall", 0))
        self.first = Masked(1, ch, 7, "A")
        self.body = nn.ModuleList(Masked(ch, ch, 3, "B") for _ in range(layers))
        self.out = nn.Conv2d(ch, 1, 1)

    def forward(self, x, cond=None, ordering=None):
        if self.stall:
            time.sleep(self.stall)
        h = torch.relu(self.first(self.normalize(x)))
        for layer in self.body:
            h = torch.relu(layer(h))
        return self.out(h).unsqueeze(-1)


SPEC = ModelSpec(name="slow-pixelcnn", title="Slow PixelCNN", description="A PixelCNN with no cached sampler.",
                 build=SlowPixelCNN, default_hparams={"channels": 8, "layers": 2, "stall": 0.0})


@hookimpl
def ar_explorer_models():
    return [SPEC]
'''
