"""``ar-explorer complete``: keep the known part of an image and sample the rest, several times."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from app.cli import options as opt
from app.cli.outputs import check_outputs, checkpoint_files, file_argument, writing
from app.core.errors import ARExplorerError

TEST_PREFIX = "test:"


def read_image_argument(session, loaded, ref: str, invert: str = "auto") -> tuple[np.ndarray, str]:
    """An image file, or ``test:INDEX`` for an image of the checkpoint's own test split.

    Returns the values ``(C, H, W)`` the model sees and a short description of where they came from.
    """
    from app.core.images import load_image

    model = loaded.model
    if ref.startswith(TEST_PREFIX):
        index_text = ref[len(TEST_PREFIX):]
        if not index_text.isdigit():
            raise ARExplorerError(f"{ref!r}: after 'test:' give the index of a test image, e.g. test:7")
        if loaded.dataset is None:
            raise ARExplorerError(f"{loaded.name} names no known dataset, so it has no test images")
        data = session.split(loaded.dataset, "test")
        index = int(index_text)
        if index >= len(data):
            raise ARExplorerError(f"{ref}: the {loaded.dataset.name} test split has {len(data)} images (0..{len(data) - 1})")
        return np.asarray(data.images[index]), f"test image {index} of {loaded.dataset.title}"
    converted = load_image(ref, tuple(model.shape), model.num_values, invert=invert)
    return converted.values, f"{ref} ({converted.describe()})"


def cmd_complete(args: argparse.Namespace) -> int:
    from app.cli.commands import _session
    from app.core.completion import complete, completion_figure, resolve_mask
    from app.core.images import save_png

    outputs = {"--out": args.out, "--npy": args.npy}
    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    opt.check_canvas(args.n + 1, tuple(model.shape), args.scale, "--n or --scale")
    inputs = [*checkpoint_files(loaded.info), file_argument(args.ordering), file_argument(args.known)]
    if not args.image.startswith(TEST_PREFIX):
        inputs.append(args.image)
    check_outputs(outputs, inputs, force=args.force)
    image, source = read_image_argument(session, loaded, args.image, args.invert)
    known = resolve_mask(args.known, model.config.height, model.config.width)
    ordering = session.ordering(args.ordering, model, args.seed)
    cond = session.condition(model, args.n, args.label) if model.config.condition is not None else None
    result = complete(
        model, image, known, args.n, seed=args.seed, temperature=args.temperature, ordering=ordering, cond=cond,
        mode=args.mode,
    )
    with writing(args.out):
        save_png(completion_figure(result, scale=args.scale), args.out)
    if args.npy:
        from app.core.files import atomic_path

        with writing(args.npy), atomic_path(args.npy) as tmp, open(tmp, "wb") as handle:
            np.save(handle, result.completions, allow_pickle=False)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{args.n} completions of {source}, keeping {result.num_known} of {known.size} pixels ({args.known}), "
          f"from {loaded.name} ({model.spec.title}, T={args.temperature}, seed {args.seed}) -> {args.out}")
    return 0


def register(sub: argparse._SubParsersAction, add_common) -> None:
    from app.core.completion import MASK_PRESETS

    p = sub.add_parser("complete", help="complete the unknown part of an image, several times (PNG)")
    add_common(p)
    p.add_argument("image", help="an image file, or test:INDEX for an image of the checkpoint's test split")
    p.add_argument("--checkpoint", required=True, help="a shipped checkpoint's name or a .safetensors path")
    p.add_argument("--known", required=True,
                   help=f"the known region: {', '.join(MASK_PRESETS)}, or a mask image (white = known)")
    p.add_argument("--n", type=opt.whole(1, 256), default=8, help="number of completions (1 to 256)")
    p.add_argument("--out", default="completions.png")
    p.add_argument("--npy", default=None, help="also save the completions' values as .npy")
    p.add_argument("--force", action="store_true", help="replace --out and --npy where they exist")
    p.add_argument("--ordering", default=None, help="for models that take any ordering: a preset or JSON file")
    p.add_argument("--temperature", type=opt.temperature, default=1.0, help="0 to 100 (1: the model itself)")
    opt.add_seed(p)
    p.add_argument("--mode", default="auto", help="naive, cached or auto")
    p.add_argument("--label", type=opt.label, default=None, help="class label, for class-conditional models")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--scale", type=opt.png_scale, default=4, help="pixel size in the PNG (1 to 64)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None, help="data folder, for test:INDEX images")
    p.set_defaults(handler=cmd_complete)
