"""The ``unlearnbench`` command line: the parser, built from the command
modules (harness/commands/), and ``main``.

Only argparse is imported here: each command imports torch and the rest of
the harness when it runs, so ``unlearnbench --help`` answers at once.
Bad input exits with status 2 and one line naming the value: argparse's own
errors too (:class:`Parser`).  A write that fails (a full disk) stops the
command with one line naming the file and the error, exit status 74.
"""
from __future__ import annotations

import argparse
import sys

from . import commands
from .errors import WRITE_FAILED, UsageError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``unlearnbench: error: argument --val-frac:
    invalid float value: 'abc' (see unlearnbench run --help)``, exit status 2
    (argparse's own prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"unlearnbench: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="unlearnbench",
        description="A benchmark suite for machine unlearning in image classification. "
                    "`unlearnbench run` runs the default benchmark and writes leaderboard.md.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {}
    for module in commands.modules():
        parser.commands[module.NAME] = module.add_parser(sub)
        parser.commands[module.NAME].set_defaults(handler=module.run)
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser.parse_args``, with an unknown option blamed on its command
    (``see unlearnbench run --help``, not the top-level help)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parse(parser, argv)
    except SystemExit as e:   # --help (0) or a bad argument (2, one line already printed)
        return e.code if isinstance(e.code, int) else 2
    if args.version:
        from importlib.metadata import version

        print(version("unlearnbench"))
        return 0
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except UsageError as e:
        print(f"unlearnbench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        from unlearnbench.methods import WriteError  # already loaded: it raised e

        if not isinstance(e, WriteError):
            raise
        print(f"unlearnbench: error: {e}; nothing half-written is left: rerun the same command to finish "
              "once there is room", file=sys.stderr)
        return WRITE_FAILED
    except KeyboardInterrupt:
        print("unlearnbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
