"""``ar-explorer lessons``: does every lecture demo show its lesson, on the shipped checkpoints?

Prints a table (lesson, checkpoints, figure, target, pass or fail), or JSON with ``--json``; exits 1 when a
lesson fails, so that a script (or a lecturer, the night before) can rely on it.
"""

from __future__ import annotations

import argparse
import sys

from app.cli import options as opt
from app.core.errors import ARExplorerError, CheckpointError


def cmd_lessons(args: argparse.Namespace) -> int:
    from app.cli.commands import _print_json, _session
    from app.core.checkpoints import resolve_checkpoint
    from app.core.classifier import load_classifier
    from app.core.lessons import LessonContext, run_lessons

    session = _session(args)
    try:
        classifier, classifier_meta = load_classifier(args.classifier)
    except CheckpointError as exc:
        raise ARExplorerError(str(exc)) from None
    checkpoints = session.checkpoints()
    only = frozenset(resolve_checkpoint(ref, session.registry).name for ref in args.checkpoint or [])
    if only:  # named by path: make sure they take part even outside the checkpoint folders
        for ref in args.checkpoint:
            info = resolve_checkpoint(ref, session.registry)
            if info.name not in {c.name for c in checkpoints}:
                checkpoints.append(info)
    quiet = args.json or args.quiet

    def progress(message: str) -> None:
        if not quiet:
            print(f"  ... {message}", file=sys.stderr, flush=True)

    ctx = LessonContext(session, classifier, checkpoints, samples_per_label=args.samples_per_label,
                        superres_images=args.superres_images, progress=progress, only=only)
    results = []
    for result in run_lessons(ctx):
        results.append(result)
        if not args.json:
            _print_row(result)
    if not results:
        raise ARExplorerError("no lesson involves the checkpoints named")
    failed = sum(not r.passed for r in results)
    if args.json:
        _print_json({"lessons": [r.to_dict() for r in results], "passed": len(results) - failed, "failed": failed,
                     "classifier": {"test_accuracy": classifier_meta.get("test_accuracy")}})
    else:
        print(f"\n{len(results) - failed} of {len(results)} lessons pass. Samples: seed 0, T = 1; NLLs: full test "
              f"splits as recorded by `ar-explorer eval`; digits read by the MNIST classifier in "
              f"checkpoints/measuring ({_accuracy(classifier_meta)}).")
    return 1 if failed else 0


def _accuracy(meta: dict) -> str:
    acc = meta.get("test_accuracy") or {}
    return "test accuracy " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items()) if acc else "accuracy unknown"


def _print_row(result) -> None:
    mark = "PASS" if result.passed else "FAIL"
    names = ", ".join(result.checkpoints) or "-"
    print(f"{mark}  {result.lesson}\n      {result.figure}   (target {result.target})\n      {names}"
          + (f"\n      {result.detail}" if result.detail else ""), flush=True)


def register(sub: argparse._SubParsersAction, add_common) -> None:
    p = sub.add_parser("lessons", help="measure each lecture lesson on the shipped checkpoints (pass or fail)")
    add_common(p)
    p.add_argument("--checkpoint", action="append", metavar="NAME",
                   help="only the lessons that involve this checkpoint (repeatable; a name or a path)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--data-dir", default=None, help="data folder (else $AR_EXPLORER_DATA, else the cache)")
    p.add_argument("--classifier", default=None, help="the digit classifier (default: the shipped one)")
    p.add_argument("--samples-per-label", type=opt.whole(1, 1000), default=10,
                   help="samples drawn per class label (1 to 1000)")
    p.add_argument("--superres-images", type=opt.whole(1, 10000), default=100,
                   help="test images whose 7x7 condition the super-resolution lesson samples from (1 to 10000)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=cmd_lessons)
