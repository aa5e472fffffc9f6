"""How a search ends early, as the CLI reports it (``nas.cli``: one line, exit 130 or 1)."""

from __future__ import annotations

from pathlib import Path


class SearchInterrupted(Exception):
    """The search was interrupted (Ctrl-C); what finished is recorded and summarised."""

    def __init__(self, run_dir: Path, trials: int, total: int) -> None:
        super().__init__(f"search interrupted after {trials} of {total} trials; what finished is kept in "
                         f"{run_dir}; continue it with: nas search {run_dir} --resume")
        self.run_dir, self.trials, self.total = Path(run_dir), trials, total


class SearchStopped(RuntimeError):
    """The search was ended early for a reason the user must fix (the message says what); summary written."""
