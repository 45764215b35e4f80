"""Give a checkpoint's stored Fisher space a new reference set, keeping its decoders and projection.

``python scripts/fisher_reference.py CHECKPOINT [--reference 1000] [--seed 0] [--out FILE]``

Nearest test images are looked up in the reference set. A space made when the set was the first test images
(the binarized-MNIST test split is ordered by class, so all of them zeros) shows a 0 as the nearest image of
every point; this embeds a seeded random sample of the test split instead, with the space's own settings, so
that every class is there. The decoders, and so every strip, are unchanged.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.fisher import load_space_for  # noqa: E402
from app.core.fisher.checkpoint_space import DEFAULT_REFERENCE, sample_test_split  # noqa: E402
from app.core.fisher.embedder import Embedder  # noqa: E402
from app.core.fisher.space import space_path  # noqa: E402
from app.core.session import Session  # noqa: E402


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--reference", type=int, default=DEFAULT_REFERENCE, help="test images drawn at random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="default: replace the space beside the checkpoint")
    args = p.parse_args(argv)
    session = Session(device=args.device, data_dir=args.data_dir)
    loaded = session.load(args.checkpoint)
    space = load_space_for(loaded.info.weights)
    sample = sample_test_split(session, loaded, args.reference, args.seed)
    embedder = Embedder(loaded.model, "fisher", space.settings, space.scaling)
    print(f"embedding {len(sample.images)} reference test images in the Fisher space of {loaded.name} "
          f"({space.settings.dim} dimensions)", file=sys.stderr)
    raw = embedder.embed(sample.images)
    meta = dict(space.meta)
    meta.update({"reference_set": sample.description, "reference_labels_source": sample.labels.source})
    new = replace(space, reference_images=sample.images, reference_fisher=space.fisher.standardise(raw),
                  reference_labels=sample.labels.values, reference_indices=sample.indices, meta=meta)
    out = Path(args.out) if args.out else space_path(loaded.info.weights)
    new.save(out)
    print(f"{out}: {sample.description}; classes from {sample.labels.source}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
