"""The ``nas`` command line: a dispatcher over one module per command, imported only when it runs.

``COMMANDS`` maps each command to its module and one-line help.  ``nas --help`` and ``nas --version``
import no command module; ``nas CMD ...`` (``--help`` included) imports CMD's module only, whose
``configure(parser)`` adds its arguments and sets ``func`` -- and command modules import torch, Ray
and the library inside ``run``, so any ``--help`` answers in a fraction of a second
(``bench/cli_speed.py``).  A user mistake -- ValueError, TypeError or a missing file raised while
parsing inputs -- is printed as one line on stderr with exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

#: command -> (module, one-line help)
COMMANDS = {
    "init": ("nas.commands.init", "copy the shipped experiment YAMLs into DIR/experiments"),
    "show": ("nas.commands.show", "stage table, params and MACs of a genotype or model"),
    "scale": ("nas.commands.scale", "the B0..B7 family of a genotype or search run"),
    "scale-search": ("nas.commands.scale_search", "grid-search the compound coefficients (alpha, beta, gamma)"),
    "profile": ("nas.commands.profile", "latency tables for a device: build, validate, measure"),
    "train-proxy": ("nas.commands.train_proxy", "train one genotype on the proxy task and print its result"),
    "export": ("nas.commands.export", "export a (scaled) model to ONNX"),
    "search": ("nas.commands.search", "run an architecture search, its random baseline and their verification"),
    "results": ("nas.commands.results", "print the summary of a search run dir (finished or interrupted)"),
    "supernet": ("nas.commands.supernet", "train a weight-sharing supernet; score genotypes with it"),
    "train": ("nas.commands.train", "train a (scaled) genotype with the EfficientNet recipe (Ray Train)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other user mistake
        self.exit(2, f"nas: error: {message} (see 'nas --help')\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` (every one when ``argv`` is None) is configured."""
    parser = _Parser(prog="nas", description="effnas: MnasNet/EfficientNet architecture search and scaling")
    parser.add_argument("--version", action="version", version=f"effnas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    wanted = _command_in(argv)
    for name, (module, help_line) in COMMANDS.items():
        p = sub.add_parser(name, help=help_line)
        if argv is None or name == wanted:
            importlib.import_module(module).configure(p)
    return parser


def _command_in(argv: list[str] | None) -> str | None:
    """The first argument that names a command (options such as -v may come before it)."""
    for arg in argv or ():
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    from .errors import SearchInterrupted, SearchStopped

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
        print(f"\nnas: {args.command} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
