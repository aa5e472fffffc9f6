"""``nas init DIR``: copy the shipped experiment YAMLs into ``DIR/experiments`` (for a pip install).

The YAMLs ship in the wheel as package data (``nas/experiments``); a clone has them in
``experiments/`` already.  Existing files are never overwritten.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="copy the shipped experiment YAMLs into DIR/experiments",
                       description="Copy the experiment YAMLs that ship with effnas (quickstart, the paper's "
                                   "settings, the grid searches) into DIR/experiments; then run e.g. "
                                   "`nas search experiments/quickstart.yaml` in DIR.  Existing files are kept.")
    p.add_argument("dir", metavar="DIR", nargs="?", default=".", help="where to create experiments/ (default .)")
    p.set_defaults(func=run)


def shipped() -> list:
    """The shipped experiment YAMLs (package resources), sorted by name."""
    folder = resources.files("nas") / "experiments"
    if not folder.is_dir():
        raise FileNotFoundError("this effnas install has no experiments (nas/experiments); reinstall effnas")
    return sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)


def run(args: argparse.Namespace) -> int:
    from nas.files import check_writable

    if not str(args.dir).strip():
        raise ValueError("nas init: DIR is empty; give a folder, e.g. nas init .")
    target = Path(args.dir).expanduser() / "experiments"
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"nas init: {str(target)!r} is a file; choose another DIR")
    files = shipped()
    check_writable(target / files[0].name, "nas init DIR", make_folder=True)
    copied, kept = [], []
    for f in files:
        dest = target / f.name
        if dest.exists():
            kept.append(f.name)
            continue
        dest.write_bytes(f.read_bytes())
        copied.append(f.name)
    print(f"{target}: copied {len(copied)} experiment(s)" + (f", kept {len(kept)} existing" if kept else ""))
    for name in copied:
        print(f"  {name}")
    print(f"next: cd {Path(args.dir).expanduser()} && nas search experiments/quickstart.yaml")
    return 0
