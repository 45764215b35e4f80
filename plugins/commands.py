"""The CLI's built-in commands, registered through ``ar_explorer_commands`` as a plugin's commands are.

Each group names its module's ``register`` function as ``"module:function"``, imported when the command line
is parsed. The order is the order of ``ar-explorer --help``.
"""

from __future__ import annotations

from app.core import hookimpl
from app.core.extensions import CommandSpec

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("core", "app.cli.commands:register", "models, check, train, sample, score, eval"),
    CommandSpec("data", "app.cli.data_commands:register", "data list, data download"),
    CommandSpec("bench", "app.cli.bench_command:register", "bench: sampling and scoring speed"),
    CommandSpec("complete", "app.cli.complete_command:register", "complete: finish a partly known image"),
    CommandSpec("fisher", "app.cli.fisher_command:register", "fisher, fisher-decoder: interpolation in Fisher-score space"),
    CommandSpec("lessons", "app.cli.lessons_command:register", "lessons: the lecture's claims, measured"),
    CommandSpec("desktop", "app.cli.desktop_command:register", "desktop: menu entry and session-file association"),
)


@hookimpl
def ar_explorer_commands():
    return list(COMMANDS)
