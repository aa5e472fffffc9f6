"""The ``nas`` command line: a dispatcher over one module per command.

Each module in ``COMMANDS`` defines ``add_parser(subparsers)`` (which sets
``func`` on its parser) and a ``run(args) -> int``.  A user mistake --
ValueError, TypeError or a missing file raised while parsing inputs -- is
printed as one line on stderr with exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = (
    "nas.commands.init",
    "nas.commands.show",
    "nas.commands.scale",
    "nas.commands.scale_search",
    "nas.commands.profile",
    "nas.commands.train_proxy",
    "nas.commands.export",
    "nas.commands.search",
    "nas.commands.results",
    "nas.commands.supernet",
    "nas.commands.train",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other user mistake
        self.exit(2, f"nas: error: {message} (see 'nas --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="effnas: MnasNet/EfficientNet architecture search and scaling")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import SearchInterrupted, SearchStopped

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"nas: error: {message}", file=sys.stderr)
        return 2
    except SearchInterrupted as stop:
        print(f"\nnas: {stop}", file=sys.stderr)
        return 130
    except SearchStopped as stop:
        print(f"\nnas: {stop}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
