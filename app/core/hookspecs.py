"""The hooks a plugin may implement. Every hook takes no arguments and returns a list.

Plugins implement them with ``@app.core.hookimpl``; see docs/plugins.md for a complete example.
"""

from __future__ import annotations

import pluggy

PROJECT = "ar_explorer"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ar_explorer_models():
    """Return a list of ModelSpec: the model families this plugin provides."""


@hookspec
def ar_explorer_datasets():
    """Return a list of DatasetSpec: the datasets this plugin provides."""


@hookspec
def ar_explorer_orderings():
    """Return a list of OrderingSpec: named ordering presets this plugin provides."""


@hookspec
def ar_explorer_checkpoint_dirs():
    """Return a list of folders (str or Path) holding checkpoints (NAME.safetensors + NAME.json) this plugin ships."""


@hookspec
def ar_explorer_demos():
    """Return a list of DemoSpec: the 1-D / 2-D demos (a toy model trained live on toy data) this plugin provides."""


@hookspec
def ar_explorer_views():
    """Return a list of ViewSpec: the tabs this plugin adds to the desktop app."""


@hookspec
def ar_explorer_commands():
    """Return a list of CommandSpec: the ar-explorer commands this plugin adds (a register function each)."""
