"""What plugins add to the app and the CLI: views (tabs of the desktop app) and commands (of ``ar-explorer``).

Plain data, Qt-free: a :class:`ViewSpec` names its widget class by ``"module:Class"`` (imported only when the
window is built) and a :class:`CommandSpec` its ``register`` function by ``"module:function"`` (imported when
the command line is parsed). The built-in views and commands register through the same hooks
(``ar_explorer_views``, ``ar_explorer_commands``: ``plugins/views.py``, ``plugins/commands.py``) as a
third-party package's, as datasette's built-in commands do through ``register_commands``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """``target`` itself, or the object that ``"module:attribute"`` names (its module imported now)."""
    if not isinstance(target, str):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{target!r} is not of the form 'module:attribute'")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class ViewSpec:
    """A view as the main window lists it: one tab.

    Parameters
    ----------
    name
        Identifier used by ``--view`` and by ``AppContext.send_image`` (``sample``).
    title
        The tab's title (``Sample``).
    factory
        ``factory(context) -> QWidget``, or ``"module:Class"`` imported when the window is built.
    description
        One line for the tab's tooltip.
    """

    name: str
    title: str
    factory: Callable[[Any], Any] | str
    description: str = ""

    def create(self, context: Any) -> Any:
        """The view's widget for the app's ``AppContext``."""
        return resolve(self.factory)(context)


@dataclass(frozen=True)
class CommandSpec:
    """Commands of ``ar-explorer``, added to its argument parser by one function.

    Parameters
    ----------
    name
        Identifier of the group (a plugin's name for its commands is enough).
    register
        ``register(subparsers, add_common)``, or ``"module:function"``: adds the commands to ``subparsers``
        (argparse's), each with ``set_defaults(handler=function)`` where ``handler(args) -> int`` runs it;
        ``add_common(parser)`` gives a command the options every command takes (``--strict-plugins``,
        ``--debug``).
    description
        One line: which commands these are.
    """

    name: str
    register: Callable[..., None] | str
    description: str = ""


__all__ = ["CommandSpec", "ViewSpec", "resolve"]
