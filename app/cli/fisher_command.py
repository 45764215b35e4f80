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
    from app.core.checkpoints import user_checkpoint_dir

    return user_checkpoint_dir()


def write_strip_arrays(result, path: str | Path) -> Path:
    """The strip's rows as ``pixels``, ``activations`` and ``fisher``, each ``(steps, H, W)`` in [0, 1]
    (one-channel models; colour ones keep their channels, ``(steps, C, H, W)``), plus ``alphas``."""
    from app.core.files import atomic_path

    def rows(strip: np.ndarray) -> np.ndarray:
        strip = np.clip(np.asarray(strip, dtype=np.float32), 0.0, 1.0)
        return strip[:, 0] if strip.shape[1] == 1 else strip

    path = Path(path)
    arrays = {"pixels": rows(result.pixel), "activations": rows(result.activation), "fisher": rows(result.fisher),
              "alphas": np.asarray(result.alphas, dtype=np.float32)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _row_summary(result, num_dims: int) -> dict[str, dict[str, float]]:
    from app.core.fisher import RowFigure

    out = {}
    for row, nats in result.interior_nll.items():
        figure = RowFigure.of(nats, num_dims)
        out[row] = {"mean_nats": round(figure.mean_nats, 3), "bits_per_dim": round(figure.bits_per_dim, 5),
                    "per_point_nats": [round(float(v), 3) for v in nats]}
    return out


def cmd_fisher(args: argparse.Namespace) -> int:
    from app.cli.commands import _session
    from app.cli.complete_command import read_image_argument
    from app.core.fisher import ROWS, interpolate, interpolation_figure, load_space_for
    from app.core.images import save_png

    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    # Three rows (pixels, activations, Fisher scores) and the nearest test images, each of steps + 2 tiles.
    opt.check_canvas(4 * (args.steps + 2), tuple(model.shape), args.scale, "--steps or --scale")
    inputs = [*checkpoint_files(loaded.info)] + [ref for ref in (args.image_a, args.image_b) if ":" not in ref]
    outputs = {"--out": args.out, **({"--npz": args.npz} if args.npz else {})}
    check_outputs(outputs, inputs, force=args.force)
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
    if args.npz:
        with writing(args.npz):
            write_strip_arrays(result, args.npz)
    data = space.meta.get("dataset_title") or space.meta.get("dataset", "?")
    summary = {
        "checkpoint": loaded.name,
        "image_a": source_a,
        "image_b": source_b,
        "alphas": [round(float(a), 4) for a in result.alphas],
        "interior_nll": _row_summary(result, int(np.prod(model.shape))),
        "interior_nll_unit": f"nats per image under {loaded.name}, each interior point quantised "
                             f"(binary: ink above 0.5), on {data} ({space.meta.get('binarization', '?')})",
        "nearest_test_index": space.reference_indices[result.nearest].tolist(),
        "nearest_label": result.nearest_labels.tolist(),
        "nearest_distance": [[round(float(d), 3) for d in row] for row in result.nearest_distances],
        "reference_set": space.reference_description,
        "projection_dim": space.settings.dim,
        "seconds": round(elapsed, 3),
        "out": str(args.out),
        "npz": str(args.npz) if args.npz else None,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"interpolated {source_a} -> {source_b} in {args.steps} steps under {loaded.name} in {elapsed:.1f} s "
          f"-> {args.out}" + (f" and {args.npz}" if args.npz else ""))
    print(f"mean NLL of the {args.steps - 2} interior points, quantised, under {loaded.name} "
          f"({data}, nats per image):")
    for row in ROWS:
        nats = result.interior_nll.get(row)
        if nats is not None and len(nats):
            print(f"  {row:10s} {float(np.mean(nats)):7.2f}")
    return 0


def _default_out(weights: Path) -> Path:
    from app.core.fisher import space_path

    target = space_path(weights)
    if os.access(target.parent, os.W_OK):
        return target
    return _user_dir() / target.name


def _settings(args: argparse.Namespace):
    from app.core.fisher import DecoderTraining, FisherSettings

    if args.images < 0 or args.reference < 1:
        raise ARExplorerError("--images cannot be negative and --reference must be at least 1")
    settings = FisherSettings(dim=args.dim, seed=args.seed, method=args.method, batch_size=args.batch_size,
                              normalisation=args.normalisation, layers=args.layers,
                              stats_images=args.stats_images, components=args.components)
    training = DecoderTraining(hidden=args.hidden, epochs=args.epochs, dropout=args.dropout, seed=args.seed)
    return settings, training


def cmd_fisher_decoder(args: argparse.Namespace) -> int:
    from app.cli.commands import _session
    from app.cli.progress import ProgressBar
    from app.core.fisher import num_parameters
    from app.core.fisher.checkpoint_space import space_steps_for

    settings, training = _settings(args)
    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    if loaded.dataset is None:
        raise ARExplorerError(f"{loaded.name} names no known dataset to train the decoders on")
    num_parameters(model, settings.layers)  # a --layers that matches nothing fails here, before any work
    out = Path(args.out) if args.out else _default_out(loaded.info.weights)
    check_outputs({"--out": out, "--out's JSON": out.with_suffix(".json")}, checkpoint_files(loaded.info),
                  force=args.force)
    parameters = sum(p.numel() for p in model.parameters())
    # Per-example gradients hold batch x parameters values at once; embeddings images x dim.
    if args.batch_size * parameters > opt.MAX_BATCH_VALUES * 64:
        raise ARExplorerError(f"--batch-size {args.batch_size}: per-example gradients of {parameters:,} parameters "
                              f"would hold {args.batch_size * parameters / 1e9:.1f} billion values; at most "
                              f"{max(1, opt.MAX_BATCH_VALUES * 64 // parameters)} images per chunk")
    print(f"Fisher space of {loaded.name} ({model.spec.title}) on {model.device}: {args.images or 'all'} "
          f"training images, {args.reference} reference test images of {loaded.dataset.title}; scores over "
          f"{settings.layers} ({num_parameters(model, settings.layers):,} parameters), {settings.normalisation} "
          f"normalisation, projected to {settings.dim}, {settings.components or 'all'} components", file=sys.stderr)
    bar, stage, space = None, None, None
    for event in space_steps_for(session, loaded, args.images, args.reference, settings, training, args.seed):
        if event.stage == "done":
            space = event.result
            break
        if event.stage != stage:
            if bar is not None:
                bar.close()
            stage, bar = event.stage, ProgressBar(max(event.total, 1), event.stage)
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
          f"{meta['activation_decoder_best_valid_nats']:.1f} from activations ({loaded.dataset.title}, training "
          f"images held out from the decoders) -> {out}")
    return 0


def register(sub: argparse._SubParsersAction, add_common) -> None:
    from app.core.fisher import ALL_LAYERS, NORMALISATIONS, DecoderTraining, FisherSettings
    from app.core.fisher.checkpoint_space import DEFAULT_REFERENCE

    p = sub.add_parser("fisher", help="interpolate two images in pixel, activation and Fisher-score space (PNG)")
    add_common(p)
    p.add_argument("image_a", help="an image file, or test:INDEX")
    p.add_argument("image_b", help="an image file, or test:INDEX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--steps", type=opt.whole(2, 32), default=8, help="points on the line, both ends included (2 to 32)")
    p.add_argument("--neighbours", type=opt.whole(1, 100), default=1, help="nearest reference test images per point")
    p.add_argument("--out", default="fisher-strip.png")
    p.add_argument("--npz", default=None, metavar="FILE",
                   help="also write the rows as arrays pixels, activations, fisher (steps x H x W, in [0, 1])")
    p.add_argument("--force", action="store_true", help="replace --out (and --npz) where they exist")
    p.add_argument("--scale", type=opt.png_scale, default=3, help="pixel size in the PNG (1 to 64)")
    p.add_argument("--json", action="store_true", help="print the rows' NLLs and the nearest test images as JSON")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None, help="data folder, for test:INDEX images")
    p.set_defaults(handler=cmd_fisher)

    s, t = FisherSettings(), DecoderTraining()
    p = sub.add_parser("fisher-decoder", help="make the decoders and reference embeddings that fisher needs")
    add_common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--images", type=opt.whole(0, 10**7), default=20000, help="training images to embed (0 = all)")
    p.add_argument("--reference", type=opt.whole(1, 100000), default=DEFAULT_REFERENCE,
                   help="test images drawn at random (from --seed) for nearest neighbours")
    p.add_argument("--dim", type=opt.whole(1, 65536), default=s.dim, help="size of the sparse random projection")
    p.add_argument("--normalisation", choices=NORMALISATIONS, default=s.normalisation,
                   help="scale each gradient by its RMS over training images: per tensor, per output channel, "
                        "per parameter (diagonal empirical Fisher), or not at all")
    p.add_argument("--layers", default=ALL_LAYERS,
                   help="'all', or comma-separated prefixes of parameter names (e.g. 'layers.9.,head')")
    p.add_argument("--stats-images", type=opt.whole(1, 10**6), default=s.stats_images,
                   help="training images whose gradients give the normalisation")
    p.add_argument("--components", type=opt.whole(0, 65536), default=s.components,
                   help="principal components each decoder reads (0 = every standardised coordinate)")
    p.add_argument("--hidden", type=opt.whole(1, 65536), default=t.hidden, help="hidden units of each decoder (an MLP)")
    p.add_argument("--epochs", type=opt.whole(1, 100000), default=t.epochs, help="decoder training epochs")
    p.add_argument("--dropout", type=opt.real(0, 0.95), default=t.dropout, help="dropout of the decoders' inputs")
    p.add_argument("--batch-size", type=opt.whole(1, 65536), default=s.batch_size, help="images per gradient chunk")
    p.add_argument("--method", choices=("auto", "vmap", "loop"), default=s.method, help="per-example gradients")
    opt.add_seed(p, "of the projection and of the images drawn")
    p.add_argument("--out", default=None, help="default: NAME.fisher-decoder.safetensors beside the checkpoint")
    p.add_argument("--force", action="store_true", help="replace --out where it exists")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=cmd_fisher_decoder)
