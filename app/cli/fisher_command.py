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

from app.core.errors import ARExplorerError


def _user_dir() -> Path:
    from plugins.checkpoints import user_checkpoint_dir

    return user_checkpoint_dir()


def cmd_fisher(args: argparse.Namespace) -> int:
    from app.cli.commands import _session
    from app.cli.complete_command import read_image_argument
    from app.core.fisher import interpolate, interpolation_figure, load_space_for
    from app.core.images import save_png

    if not 2 <= args.steps <= 32:
        raise ARExplorerError("--steps must be between 2 and 32")
    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    space = load_space_for(loaded.info.weights, _user_dir())
    image_a, source_a = read_image_argument(session, loaded, args.image_a, args.invert)
    image_b, source_b = read_image_argument(session, loaded, args.image_b, args.invert)
    start = time.perf_counter()
    result = interpolate(model, space, image_a, image_b, args.steps, args.neighbours)
    elapsed = time.perf_counter() - start
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
    if loaded.dataset is None:
        raise ARExplorerError(f"{loaded.name} names no known dataset to train the decoders on")
    train = session.split(loaded.dataset, "train")
    rng = np.random.default_rng(args.seed)
    count = min(args.images, len(train)) if args.images else len(train)
    train_images = train.images[np.sort(rng.choice(len(train), count, replace=False))]
    reference = session.split(loaded.dataset, "test", args.reference).images
    settings = FisherSettings(dim=args.dim, seed=args.seed, method=args.method, batch_size=args.batch_size)
    training = DecoderTraining(hidden=args.hidden, epochs=args.epochs, seed=args.seed)
    out = Path(args.out) if args.out else _default_out(loaded.info.weights)
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
    p.add_argument("--steps", type=int, default=8, help="points on the line, both ends included")
    p.add_argument("--neighbours", type=int, default=1, help="nearest reference test images per point")
    p.add_argument("--out", default="fisher-strip.png")
    p.add_argument("--scale", type=int, default=3, help="pixel size in the PNG")
    p.add_argument("--json", action="store_true", help="print the points' nearest test images as JSON")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None, help="data folder, for test:INDEX images")
    p.set_defaults(handler=cmd_fisher)

    p = sub.add_parser("fisher-decoder", help="make the decoders and reference embeddings that fisher needs")
    add_common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--images", type=int, default=20000, help="training images to embed (0 = all)")
    p.add_argument("--reference", type=int, default=500, help="test images kept for nearest neighbours")
    p.add_argument("--dim", type=int, default=256, help="size of the random projection")
    p.add_argument("--hidden", type=int, default=256, help="hidden units of each decoder")
    p.add_argument("--epochs", type=int, default=30, help="decoder training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="images per gradient chunk")
    p.add_argument("--method", choices=("auto", "vmap", "loop"), default="auto", help="per-example gradients")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: NAME.fisher-decoder.safetensors beside the checkpoint")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=cmd_fisher_decoder)
