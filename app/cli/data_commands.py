"""``ar-explorer data list`` and ``ar-explorer data download NAME``."""

from __future__ import annotations

import argparse
import sys

from app.core.errors import ARExplorerError


def cmd_data_list(args: argparse.Namespace) -> int:
    from app.core.datasets import resolve_data_dir
    from app.core.registry import get_registry
    from app.core.session import Session

    registry = get_registry(strict=args.strict_plugins)
    session = Session(registry, "cpu", args.data_dir)
    print(f"data folder: {resolve_data_dir(args.data_dir)}")
    for spec in registry.datasets.values():
        if spec.offline:
            state = "built in (no download)"
        else:
            state = "present" if session.has_data(spec) else f"missing: ar-explorer data download {spec.name}"
        print(f"  {spec.name:<24} {state:<44} {spec.binarization}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from app.cli.progress import ProgressBar
    from app.core.datasets import download_dataset, resolve_data_dir
    from app.core.registry import get_registry

    registry = get_registry(strict=args.strict_plugins)
    spec = registry.dataset(args.name)
    if spec.offline:
        print(f"{spec.name} is made by the app and needs no download")
        return 0
    data_dir = resolve_data_dir(args.data_dir)
    bars: dict[str, ProgressBar] = {}

    def progress(name: str, done: int, total: int) -> None:
        if name not in bars:
            bars[name] = ProgressBar(total or 1, name)
        bars[name].total = total or max(done, 1)
        bars[name].update(done)

    try:
        paths = download_dataset(spec, data_dir, progress)
    finally:
        for bar in bars.values():
            bar.close()
    for path in paths:
        print(f"verified {path}")
    print(f"{spec.title} is ready in {data_dir}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction, add_common) -> None:
    p = sub.add_parser("data", help="list datasets, or download one with verified checksums")
    add_common(p)
    inner = p.add_subparsers(dest="data_command", metavar="ACTION")
    q = inner.add_parser("list", help="which datasets are present")
    add_common(q)
    q.add_argument("--data-dir", default=None)
    q.set_defaults(handler=cmd_data_list)
    q = inner.add_parser("download", help="download a dataset and verify its checksums")
    add_common(q)
    q.add_argument("name")
    q.add_argument("--data-dir", default=None)
    q.set_defaults(handler=cmd_data_download)

    def no_action(args: argparse.Namespace) -> int:
        raise ARExplorerError("say what to do: ar-explorer data list | ar-explorer data download NAME")

    p.set_defaults(handler=no_action)
