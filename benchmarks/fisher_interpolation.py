"""Is the Fisher row likelier than the baselines? ``python benchmarks/fisher_interpolation.py [options]``.

Over ``--pairs`` seeded random pairs of test digits of different classes, interpolates in pixel space,
mean activations and Fisher scores (``--steps`` points, both ends included) with the checkpoint's stored
Fisher space, and prints per row:

- the mean NLL under the model of the interior points, each quantised as the model sees it (binary images:
  ink above 0.5), in nats per image and bits/dim, with its standard error over all interior points;
- that mean minus the Fisher row's, pair by pair (positive: the Fisher row is likelier);
- the held-out reconstruction of the two ends by the row's decoder (binary cross-entropy of the real test
  images under the decoded means, nats per image);
- how confidently the app's digit classifier reads the interior points as a digit (mean probability).

Then the settings the space was made with. ``--json`` prints everything as JSON, ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.errors import ARExplorerError  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="gated-pixelcnn-binarized-mnist")
    p.add_argument("--space", default=None, help="a Fisher space file (default: the checkpoint's own)")
    p.add_argument("--pairs", type=int, default=50, help="pairs of test digits of different classes")
    p.add_argument("--steps", type=int, default=8, help="points per strip, both ends included")
    p.add_argument("--seed", type=int, default=1, help="of the pairs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", default=None, help="also write the JSON report here")
    return p.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    from app.core.checkpoints import user_checkpoint_dir
    from app.core.fisher import FisherSpace, different_class_pairs, final_event, load_space_for, read_labels
    from app.core.fisher.benchmark import measure_pairs_steps
    from app.core.session import Session

    if args.pairs < 1 or not 3 <= args.steps <= 32:
        raise ARExplorerError("--pairs must be at least 1 and --steps between 3 and 32")
    session = Session(device=args.device, data_dir=args.data_dir)
    loaded = session.load(args.checkpoint)
    space = FisherSpace.load(args.space) if args.space else load_space_for(loaded.info.weights, user_checkpoint_dir())
    if loaded.dataset is None:
        raise ARExplorerError(f"{loaded.name} names no dataset to take test pairs from")
    test = session.split(loaded.dataset, "test")
    labels = read_labels(test.images, test.labels, loaded.model.num_values)
    pairs = different_class_pairs(labels.values, args.pairs, args.seed)
    start = time.perf_counter()
    last = None
    for last in measure_pairs_steps(loaded.model, space, test.images, pairs, args.steps):
        if last.stage == "pairs" and (last.done % 10 == 0 or last.done == last.total):
            print(f"  {last.done} / {last.total} pairs ({last.message})", file=sys.stderr)
    report = final_event(iter([last])).result
    rows = {}
    for row in ("pixel", "activation", "fisher"):
        figure = report.figure(row)
        versus = report.paired_difference(row, "fisher")
        rec = report.reconstruction.get(row)
        rows[row] = {
            "interior_nll_nats": figure.mean_nats, "interior_nll_stderr": figure.stderr_nats,
            "interior_bits_per_dim": figure.bits_per_dim, "interior_points": figure.count,
            "minus_fisher_nats": versus.mean_nats, "minus_fisher_stderr": versus.stderr_nats,
            "end_reconstruction_nats": float(rec.mean()) if rec is not None else None,
            "end_reconstruction_stderr": float(rec.std(ddof=1) / np.sqrt(rec.size)) if rec is not None else None,
            "digit_confidence": float(np.nanmean(report.confidence[row])),
        }
    meta = space.meta
    return {
        "checkpoint": loaded.name,
        "data": f"{loaded.dataset.title} ({loaded.dataset.binarization}), test split",
        "pairs": args.pairs, "steps": args.steps, "pair_seed": args.seed,
        "pair_classes": labels.source,
        "rows": rows,
        "space_settings": {**vars(space.settings)},
        "decoder_training": meta.get("decoder_training"),
        "num_train_images": meta.get("num_train_images"),
        "reference_set": space.reference_description,
        "made_with": meta.get("made_with"),
        "validation_reconstruction_nats": {"fisher": meta.get("fisher_decoder_best_valid_nats"),
                                           "activation": meta.get("activation_decoder_best_valid_nats")},
        "seconds": round(time.perf_counter() - start, 1),
        "pair_indices": [list(p) for p in pairs],
    }


def format_report(report: dict) -> str:
    lines = [
        f"{report['checkpoint']} on {report['data']}: {report['pairs']} pairs of test digits of different "
        f"classes (seed {report['pair_seed']}; classes {report['pair_classes']}), {report['steps']} points per "
        f"strip, {report['steps'] - 2} interior",
        "",
        "| row | interior NLL, nats/image (bits/dim) | minus Fisher row, per pair | ends' reconstruction, nats/image "
        "| digit confidence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, r in report["rows"].items():
        rec = (f"{r['end_reconstruction_nats']:.1f} ± {r['end_reconstruction_stderr']:.1f}"
               if r["end_reconstruction_nats"] is not None else "(the images themselves)")
        versus = "" if row == "fisher" else f"{r['minus_fisher_nats']:+.1f} ± {r['minus_fisher_stderr']:.1f}"
        lines.append(f"| {row} | {r['interior_nll_nats']:.1f} ± {r['interior_nll_stderr']:.1f} "
                     f"({r['interior_bits_per_dim']:.4f}) | {versus} | {rec} | {r['digit_confidence']:.2f} |")
    s = report["space_settings"]
    t = report["decoder_training"] or {}
    lines += [
        "",
        f"Fisher space: scores over {s['layers']} parameters, {s['normalisation']} normalisation, sparse random "
        f"projection to {s['dim']} (seed {s['seed']}), {s['components'] or 'all'} principal components; MLP "
        f"decoders ({t.get('hidden')} hidden, {t.get('epochs')} epochs, dropout {t.get('dropout')}) trained on "
        f"{report['num_train_images']} training images; nearest images among {report['reference_set']}.",
        f"Validation reconstruction when made (held-out training images): Fisher "
        f"{report['validation_reconstruction_nats']['fisher']:.1f}, activations "
        f"{report['validation_reconstruction_nats']['activation']:.1f} nats/image. "
        f"Measured in {report['seconds']:.0f} s.",
    ]
    if report.get("made_with"):
        lines.append(f"Made with: {report['made_with']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        report = measure(args)
    except ARExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
