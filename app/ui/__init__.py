"""The desktop app: a PySide6 + pyqtgraph shell and views over the headless core.

Nothing here computes a model itself: the views call :mod:`app.core` (sampling, scoring, receptive fields)
on worker threads and render the plain numpy data that comes back. ``ar-explorer`` with no command opens
:func:`app.ui.launch.launch`; views are listed in :mod:`app.ui.views` (see ``docs/ui-views.md``).
"""

try:  # before any widget exists: see app/ui/compat.py
    from app.ui import compat as _compat  # noqa: F401
except ImportError:  # PySide6 missing: the Qt-free helpers (formatting, rendering) still import
    pass
