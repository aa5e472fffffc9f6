"""How a run ends early, as the CLI reports it (``nas.cli``: one line, exit 130 or 1)."""

from __future__ import annotations

from pathlib import Path


class SearchInterrupted(Exception):
    """Ctrl-C: what finished is recorded and summarised; the message names the stage, how far it got and the
    one command that continues the whole run."""

    def __init__(self, stage: str, done: int, total: int, run_dir: Path, command: str, unit: str = "candidates"):
        super().__init__(f"{stage} interrupted after {done} of {total} {unit}; what finished is kept in {run_dir}; "
                         f"continue the whole run with: {command}")
        self.stage, self.done, self.total, self.unit = stage, done, total, unit
        self.run_dir, self.command = Path(run_dir), command


class SearchStopped(RuntimeError):
    """The search was ended early for a reason the user must fix (the message says what); summary written."""
