"""``nas init DIR``: copy the shipped experiment YAMLs into ``DIR/experiments`` (for a pip install).

The YAMLs ship in the wheel as package data (``nas/experiments``); a clone has them in
``experiments/`` already.  Existing files are never overwritten.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Copy the experiment YAMLs that ship with effnas (quickstart, the paper's "
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
    print(f"next, in {Path(args.dir).expanduser()}, in this order:")
    for command, what in next_commands(target):
        print(f"  {command:<62} # {what}")
    return 0


QUICKSTART = "quickstart.yaml"


def next_commands(folder: Path) -> list[tuple[str, str]]:
    """The commands that run the quickstart from ``folder`` (DIR/experiments), in order, read from its YAMLs.

    A quickstart scored by a supernet needs that supernet first: the shipped YAML whose run dir holds the
    quickstart's ``evaluator.checkpoint`` is trained before the search.
    """
    import yaml

    try:
        quick = yaml.safe_load((folder / QUICKSTART).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        quick = None
    quick = quick if isinstance(quick, dict) else {}  # a user's own (kept) quickstart.yaml may be anything
    output = quick.get("output") if isinstance(quick.get("output"), dict) else {}
    run = f"{output.get('dir', 'runs')}/{output.get('name', 'search')}"
    steps = []
    evaluator = quick.get("evaluator") if isinstance(quick.get("evaluator"), dict) else {}
    if evaluator.get("kind") == "supernet":
        checkpoint = str(evaluator.get("checkpoint", ""))
        maker = _supernet_yaml_for(folder, checkpoint)
        steps.append((f"nas supernet train experiments/{maker}" if maker else
                      f"nas supernet train SUPERNET.yaml  (writes {checkpoint})", "train the quickstart's supernet"))
    steps += [(f"nas search experiments/{QUICKSTART}", "search, random baseline, verification, report"),
              (f"nas results {run}", "the summary again, at any time (no Ray)")]
    return steps


def _supernet_yaml_for(folder: Path, checkpoint: str) -> str | None:
    import yaml

    for f in sorted(folder.glob("*.yaml")):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("supernet"), dict) \
                or not isinstance(doc.get("output"), dict):
            continue
        out = doc["output"]
        made = f"{out.get('dir', 'runs')}/{out.get('name', 'supernet')}/{(doc['supernet'] or {}).get('checkpoint', 'supernet.pt')}"
        if Path(made) == Path(checkpoint):
            return f.name
    return None
