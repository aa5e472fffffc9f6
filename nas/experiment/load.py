"""The one experiment loader of every kind (search, supernet, train, one trial), and the run-dir rules.

An experiment kind is a frozen dataclass of sections (``nas.experiment.search.Experiment``,
``.supernet.SupernetExperiment``, ``.train.TrainExperiment``, ``.trial.TrialConfig``) that declares:

* ``PATHS``: the dotted fields that name files or folders (made absolute here, from the current
  folder: Ray runs work in other folders);
* ``CONFIG_FILE``: the resolved experiment written into its run dir (``--resume RUN_DIR`` reads it);
* ``check()``: the checks that need more than one section; ``holds_run(run_dir)``: whether a run
  of this kind is already there.

``load`` reads YAML (or a mapping), applies ``--set`` overrides, resolves ``space`` (a YAML file or an inline
mapping becomes the declaration it holds: ``nas.experiment.space``), type-checks (``nas.config.from_dict``:
unknown keys, wrong types and values out of range name their YAML path), fixes paths and runs
``check()``.  ``load_run`` also takes a run dir (with ``--resume``), refusing a stage folder of a
search with the one line that continues the whole run.  ``prepare_run_dir`` applies the run-dir
rules (a folder, writable, unused unless resuming); ``check_data`` reads the data once -- the last
check before slow work, so a bad dataset is one line instead of a failure in every worker.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..config import ConfigError, apply_overrides, from_dict, load_yaml
from ..files import atomic_write, path_problem
from .run_dir import refuse_stage_folder
from .space import space_value

K = TypeVar("K")


def absolute(value: str | None) -> str | None:
    """A user path made absolute (``~`` expanded); URIs (``s3://...``) and empty values unchanged.

    A symlink loop stays unresolved (made absolute only), so the check that reads it can say what it is.
    """
    if not value or "://" in value:
        return value
    try:
        return str(Path(value).expanduser().resolve())
    except (RuntimeError, OSError):
        import os

        return os.path.abspath(Path(value).expanduser())


def absolute_paths(exp: K) -> K:
    """``exp`` with every field of its kind's ``PATHS`` (``section.key``) made absolute."""
    changes: dict[str, Any] = {}
    for dotted in type(exp).PATHS:
        section, key = dotted.split(".")
        current = changes.get(section, getattr(exp, section))
        changes[section] = dataclasses.replace(current, **{key: absolute(getattr(current, key))})
    return dataclasses.replace(exp, **changes)


def load(kind: type[K], source: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
         data: dict | None = None) -> K:
    """Read, override, type-check, fix paths and check an experiment of ``kind`` (every mistake one line)."""
    raw = load_yaml(source) if source is not None else dict(data or {})
    apply_overrides(raw, overrides)
    raw = kind.sections_of(raw) if hasattr(kind, "sections_of") else raw
    if "space" in raw and any(f.name == "space" for f in dataclasses.fields(kind)):
        base_dir = Path(source).expanduser().resolve().parent if source is not None else None
        raw["space"] = space_value(raw["space"], base_dir)
    exp = absolute_paths(from_dict(kind, raw))
    exp.check()
    return exp


def relocated(exp: K, run_dir: Path) -> K:
    """``exp`` with its output at ``run_dir``: a moved or copied run dir resumes where it is now."""
    run_dir = Path(run_dir).expanduser().resolve()
    output = dataclasses.replace(exp.output, dir=str(run_dir.parent), name=run_dir.name)
    return dataclasses.replace(exp, output=output)


def load_run(kind: type[K], target: str | Path, overrides: list[str] | tuple[str, ...] = (),
             resume: bool = False) -> K:
    """``target`` is an experiment YAML, or with ``resume`` a run dir of ``kind`` (its resolved config)."""
    path = Path(target).expanduser()
    if not path.is_dir():
        return load(kind, path, overrides)
    if not resume:
        raise ConfigError(f"config file {str(target)!r} is a folder; pass the YAML experiment, or add --resume to "
                          "continue the run in it")
    refuse_stage_folder(path)
    config = path / kind.CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"--resume: {str(target)!r} has no {kind.CONFIG_FILE}: not a {kind.KIND} run dir; "
                                f"pass a run dir that `nas {kind.COMMAND}` wrote, or the YAML experiment")
    return relocated(load(kind, config, overrides), path)


def prepare_run_dir(exp: Any, resume: bool) -> Path:
    """The run-dir rules: a folder (not a file), writable, unused for a new run, holding a run to resume.

    Creates the run dir (a probe file shows it is writable), so an unwritable output fails here, before
    any slow work.  Returns the run dir.
    """
    run_dir = exp.run_dir
    for folder, key in ((run_dir.parent, "output.dir"), (run_dir, "output.name")):
        problem = path_problem(folder, "folder")
        if problem not in (None, "does not exist"):
            raise ConfigError(f"{key}: {str(folder)!r} {problem}, not a folder; choose another {key}")
    holds = exp.holds_run(run_dir)
    if resume and not holds:
        raise FileNotFoundError(f"--resume: no {exp.KIND} at {str(run_dir)!r}; run without --resume to start it")
    if holds and not resume:
        raise ConfigError(f"output: run dir {str(run_dir)!r} already holds a {exp.KIND}; pass --resume to "
                          "continue it or set output.name to start a new one")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"output.dir: cannot write the run dir {str(run_dir)!r} ({err.strerror or err}); "
                          "choose a writable output.dir") from None
    return run_dir


def resolved_yaml(exp: Any, **extra: Any) -> str:
    return yaml.safe_dump({**exp.to_dict(), **extra}, sort_keys=False)


def write_config(exp: Any, **extra: Any) -> Path:
    """The resolved experiment (+ ``extra`` top-level keys) into ``<run dir>/<CONFIG_FILE>``, atomically."""
    exp.run_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write(exp.run_dir / exp.CONFIG_FILE, resolved_yaml(exp, **extra))


def check_data(data_cfg: Any) -> Any:
    """Read the dataset once (seconds; cached per process) and return it; a mistake is one ConfigError line.

    The image-folder kind is only checked to be a folder (decoding it is the slow part of a run).
    """
    from ..data import load_data

    if data_cfg.kind == "imagefolder":
        problem = path_problem(data_cfg.path, "folder")
        if problem:
            raise ConfigError(f"data.path: {data_cfg.path!r} {problem}; name the folder of class folders")
        return None
    try:
        return load_data(data_cfg)
    except (ValueError, OSError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(text if text.startswith("data") else f"data: {text}") from None


def check_data_path(data_cfg: Any) -> None:
    """``data.path`` exists as what its kind reads (a file for npz, a folder otherwise); builtin has none."""
    if data_cfg.kind == "builtin":
        return
    want = "file" if data_cfg.kind == "npz" else "folder"
    problem = path_problem(data_cfg.path, want)
    if problem:
        raise ConfigError(f"data.path: {data_cfg.path!r} {problem}; fix the path (data.kind {data_cfg.kind!r} "
                          f"reads a {'.npz file' if want == 'file' else 'folder'})")


def section_of(data: dict, names: tuple[str, ...]) -> dict:
    """The top-level sections ``names`` of a parsed YAML (others dropped), for kinds that read a part."""
    return {k: v for k, v in data.items() if k in names}


__all__ = ["absolute", "absolute_paths", "check_data", "check_data_path", "load", "load_run", "prepare_run_dir",
           "relocated", "resolved_yaml", "write_config"]
