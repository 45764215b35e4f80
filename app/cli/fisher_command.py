"""``ar-explorer fisher``: interpolate between two images in pixel, activation and Fisher-score space;
``ar-explorer fisher-decoder``: make the decoders (and reference embeddings) that it needs, once per checkpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from app.cli import options as opt
from app.cli.outputs import check_outputs, checkpoint_files, writing
from app.core.errors import ARExplorerError


def _user_dir() -> Path:
    from plugins.checkpoints import user_checkpoint_dir

    return user_checkpoint_dir()


def cmd_fisher(args: argparse.Namespace) -> int:
    from app.cli.commands import _session
    from app.cli.complete_command import read_image_argument
    from app.core.fisher import interpolate, interpolation_figure, load_space_for
    from app.core.images import save_png

    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    # Three rows (pixels, activations, Fisher scores) and the nearest test images, each of steps + 2 tiles.
    opt.check_canvas(4 * (args.steps + 2), tuple(model.shape), args.scale, "--steps or --scale")
    inputs = [*checkpoint_files(loaded.info)] + [ref for ref in (args.image_a, args.image_b) if ":" not in ref]
    check_outputs({"--out": args.out}, inputs, force=args.force)
    space = load_space_for(loaded.info.weights, _user_dir())
    if args.neighbours > len(space.reference_images):
        raise ARExplorerError(f"--neighbours {args.neighbours}: the reference set holds "
                              f"{len(space.reference_images)} test images")
    image_a, source_a = read_image_argument(session, loaded, args.image_a, args.invert)
    image_b, source_b = read_image_argument(session, loaded, args.image_b, args.invert)
    start = time.perf_counter()
    result = interpolate(model, space, image_a, image_b, args.steps, args.neighbours)
    elapsed = time.perf_counter() - start
    with writing(args.out):
        save_png(interpolation_figure(result, model.num_values, args.scale), args.out)
    summary = {
        "checkpoint": loaded.name,
        "image_a": source_a,
        "image_b": source_b,
        "alphas": [round(float(a), 4) for a in result.alphas],
        "nearest_reference": result.nearest.tolist(),
        "nearest_distance": [[round(float(d), 3) for d in row] for row in result.nearest_distances],
        "reference_set": f"the first {len(space.reference_images)} test images of {space.meta.get('dataset', '?')}",
        "projection_dim": space.settings.dim,
        "seconds": round(elapsed, 3),
        "out": str(args.out),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"interpolated {source_a} -> {source_b} in {args.steps} steps under {loaded.name} "
              f"(pixels, mean activations, Fisher scores projected to {space.settings.dim} dims) "
              f"in {elapsed:.1f} s -> {args.out}")
    return 0


def _default_out(weights: Path) -> Path:
    from app.core.fisher import space_path

    target = space_path(weights)
    if os.access(target.parent, os.W_OK):
        return target
    return _user_dir() / target.name


def cmd_fisher_decoder(args: argparse.Namespace) -> int:
    from app.cli.commands import _session
    from app.cli.progress import ProgressBar
    from app.core.fisher import DecoderTraining, FisherSettings, build_space_steps, weights_sha256

    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    out = Path(args.out) if args.out else _default_out(loaded.info.weights)
    check_outputs({"--out": out, "--out's JSON": out.with_suffix(".json")}, checkpoint_files(loaded.info),
                  force=args.force)
    parameters = sum(p.numel() for p in model.parameters())
    # Per-example gradients hold batch x parameters values at once; embeddings images x dim.
    if args.batch_size * parameters > opt.MAX_BATCH_VALUES * 64:
        raise ARExplorerError(f"--batch-size {args.batch_size}: per-example gradients of {parameters:,} parameters "
                              f"would hold {args.batch_size * parameters / 1e9:.1f} billion values; at most "
                              f"{max(1, opt.MAX_BATCH_VALUES * 64 // parameters)} images per chunk")
    if loaded.dataset is None:
        raise ARExplorerError(f"{loaded.name} names no known dataset to train the decoders on")
    train = session.split(loaded.dataset, "train")
    rng = np.random.default_rng(args.seed)
    count = min(args.images, len(train)) if args.images else len(train)
    train_images = train.images[np.sort(rng.choice(len(train), count, replace=False))]
    reference = session.split(loaded.dataset, "test", args.reference).images
    settings = FisherSettings(dim=args.dim, seed=args.seed, method=args.method, batch_size=args.batch_size)
    training = DecoderTraining(hidden=args.hidden, epochs=args.epochs, seed=args.seed)
    meta = {
        "checkpoint": loaded.name,
        "checkpoint_sha256": weights_sha256(loaded.info.weights),
        "dataset": loaded.dataset.name,
        "binarization": loaded.dataset.binarization,
        "device": str(model.device),
    }
    print(f"Fisher space of {loaded.name} ({model.spec.title}, {sum(p.numel() for p in model.parameters())} "
          f"parameters) on {model.device}: {count} training images, {len(reference)} reference test images of "
          f"{loaded.dataset.title}", file=sys.stderr)
    bar, stage, space = None, None, None
    for event in build_space_steps(model, train_images, reference, settings, training, meta):
        if event.stage == "done":
            space = event.result
            break
        if event.stage != stage:
            if bar is not None:
                bar.close()
            stage, bar = event.stage, ProgressBar(event.total, event.stage)
        bar.update(event.done, event.message)
    if bar is not None:
        bar.close()
    if space is None:
        raise ARExplorerError("the Fisher space was not finished; nothing was written")
    with writing(out):
        space.save(out)
    meta = space.meta
    print(f"Fisher scores {1000 * meta['fisher_seconds_per_image']:.0f} ms/image, activations "
          f"{1000 * meta['activation_seconds_per_image']:.0f} ms/image; held-out reconstruction "
          f"{meta['fisher_decoder_best_valid_nats']:.1f} nats/image from Fisher scores, "
          f"{meta['activation_decoder_best_valid_nats']:.1f} from activations -> {out}")
    return 0


def register(sub: argparse._SubParsersAction, add_common) -> None:
    p = sub.add_parser("fisher", help="interpolate two images in pixel, activation and Fisher-score space (PNG)")
    add_common(p)
    p.add_argument("image_a", help="an image file, or test:INDEX")
    p.add_argument("image_b", help="an image file, or test:INDEX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--steps", type=opt.whole(2, 32), default=8, help="points on the line, both ends included (2 to 32)")
    p.add_argument("--neighbours", type=opt.whole(1, 100), default=1, help="nearest reference test images per point")
    p.add_argument("--out", default="fisher-strip.png")
    p.add_argument("--force", action="store_true", help="replace --out where it exists")
    p.add_argument("--scale", type=opt.png_scale, default=3, help="pixel size in the PNG (1 to 64)")
    p.add_argument("--json", action="store_true", help="print the points' nearest test images as JSON")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None, help="data folder, for test:INDEX images")
    p.set_defaults(handler=cmd_fisher)

    p = sub.add_parser("fisher-decoder", help="make the decoders and reference embeddings that fisher needs")
    add_common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--images", type=opt.whole(0, 10**7), default=20000, help="training images to embed (0 = all)")
    p.add_argument("--reference", type=opt.whole(1, 100000), default=500, help="test images kept for nearest neighbours")
    p.add_argument("--dim", type=opt.whole(1, 65536), default=256, help="size of the random projection")
    p.add_argument("--hidden", type=opt.whole(1, 65536), default=256, help="hidden units of each decoder")
    p.add_argument("--epochs", type=opt.whole(1, 100000), default=30, help="decoder training epochs")
    p.add_argument("--batch-size", type=opt.whole(1, 65536), default=32, help="images per gradient chunk")
    p.add_argument("--method", choices=("auto", "vmap", "loop"), default="auto", help="per-example gradients")
    opt.add_seed(p)
    p.add_argument("--out", default=None, help="default: NAME.fisher-decoder.safetensors beside the checkpoint")
    p.add_argument("--force", action="store_true", help="replace --out where it exists")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=cmd_fisher_decoder)
