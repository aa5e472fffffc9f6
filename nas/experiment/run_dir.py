"""The names in a search's run dir, and the one command that continues a run.

A ``nas search`` run dir holds the search (``.``) and its stage folders -- ``baseline/`` (the
equal-budget random search) and ``verify/`` (``verify-<N>/`` after a grown budget) -- each with
its own ``config.yaml``, ``trials.jsonl`` and ``search_state.json``; ``stages.json`` lists the
finished stages.  A run is always continued as a whole, from its run dir: ``resume_command``
is the line every interrupt prints, and ``--resume`` on a stage folder is refused with it.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError

CONFIG = "config.yaml"
TRIALS = "trials.jsonl"
STAGES = "stages.json"
#: The session's resume state (controller, candidates asked, search time): ``nas.search.session``.
STATE = "search_state.json"
BASELINE_DIR = "baseline"
VERIFY_DIR = "verify"


def resume_command(run_dir: str | Path) -> str:
    """The one command that continues the whole run (every stage) in ``run_dir``."""
    return f"nas search {Path(run_dir)} --resume"


def stage_of(folder: str | Path) -> str | None:
    """``baseline`` or ``verify`` when ``folder`` is that stage folder of a search run dir, else None."""
    folder = Path(folder).expanduser().resolve()
    if not (folder.parent / STAGES).is_file():
        return None
    if folder.name == BASELINE_DIR:
        return "baseline"
    if folder.name == VERIFY_DIR or folder.name.startswith(VERIFY_DIR + "-"):
        return "verify"
    return None


def refuse_stage_folder(folder: str | Path) -> None:
    """A stage folder is never resumed on its own: ConfigError with the command that continues the run."""
    stage = stage_of(folder)
    if stage is not None:
        run_dir = Path(folder).expanduser().resolve().parent
        raise ConfigError(f"{str(folder)!r} is the {stage} stage of the run {str(run_dir)!r}, which continues as a "
                          f"whole: continue the whole run with: {resume_command(run_dir)}")


__all__ = ["BASELINE_DIR", "CONFIG", "STAGES", "STATE", "TRIALS", "VERIFY_DIR", "refuse_stage_folder",
           "resume_command", "stage_of"]
