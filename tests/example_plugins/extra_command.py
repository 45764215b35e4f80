"""A third-party command, ``ar-explorer hello``, registered through ``ar_explorer_commands`` as the built-in
commands are."""

from app.core import hookimpl
from app.core.extensions import CommandSpec


def hello(args) -> int:
    print(f"hello, {args.name}")
    return 0


def register(sub, add_common) -> None:
    parser = sub.add_parser("hello", help="say hello")
    add_common(parser)
    parser.add_argument("name")
    parser.set_defaults(handler=hello)


def broken(sub, add_common) -> None:
    raise RuntimeError("this command is unfinished")


@hookimpl
def ar_explorer_commands():
    return [CommandSpec("hello", register, "hello: a greeting"), CommandSpec("broken", broken, "a broken one")]
