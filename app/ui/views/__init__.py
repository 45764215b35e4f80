"""The views of the main window: every tab is a :class:`ViewSpec` that a plugin registers.

The built-in views register through the hook ``ar_explorer_views`` (``plugins/views.py``), exactly as a
third-party package's views do; :func:`registered_views` lists them in the registry's order. Code that embeds
the app may add a view with :func:`register_view` before the window is built. The protocol (what the widget
gets, what it may define) is in ``docs/ui-views.md``. Factories name their module (``"module:Class"``) and
import it when the window is built, so that the window opens fast however many views there are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.extensions import ViewSpec

if TYPE_CHECKING:
    from app.core.registry import Registry

#: Views added by code (:func:`register_view`), over those the plugins register.
EXTRA_VIEWS: list[ViewSpec] = []


def register_view(spec: ViewSpec) -> None:
    """Add a view (or replace the one with the same name) to every window built from now on."""
    for i, existing in enumerate(EXTRA_VIEWS):
        if existing.name == spec.name:
            EXTRA_VIEWS[i] = spec
            return
    EXTRA_VIEWS.append(spec)


def registered_views(registry: Registry) -> list[ViewSpec]:
    """The plugins' views in the registry's order, with those of :func:`register_view` in place of a view of the
    same name or after them."""
    views = dict(registry.views)
    for spec in EXTRA_VIEWS:
        views[spec.name] = spec
    return list(views.values())


def view_names(registry: Registry) -> list[str]:
    return [spec.name for spec in registered_views(registry)]


__all__ = ["EXTRA_VIEWS", "ViewSpec", "register_view", "registered_views", "view_names"]
