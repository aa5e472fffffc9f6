"""Records finished trials: one ``trials.jsonl`` row each, search-level TensorBoard scalars, progress lines.

The driver (``nas.driver``) hands every finished trial over as one typed
:class:`~nas.search.trial.TrialResult` (settled by ``nas.search.trial.settle``)
plus the extra columns of its run (the grid triple, the node it ran on); this
module knows nothing of Ray.  Rows are the result's fields without the
per-epoch history, with ``trial_id`` and ``index`` (the order of recording).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Callable

from . import results
from .trial import TrialResult


def _same_reason(reason: str) -> str:
    """A failure reason with its numbers blurred (sizes, ids), so one cause reads as one reason."""
    return re.sub(r"\d+(\.\d+)?", "N", reason or "")


def trial_row(trial_id: str, index: int, result: TrialResult, extra: dict[str, Any] | None = None) -> dict:
    """The ``trials.jsonl`` row of a finished trial."""
    row = result.to_dict()
    row.pop("history", None)
    return {"trial_id": trial_id, "index": index, **row, **(extra or {})}


class TrialRecorder:
    """Appends finished trials to trials.jsonl, writes search-level TensorBoard scalars, reports progress.

    Pickled with the Tuner (``tuner.pkl``) and restored with it on resume; files and
    writers are opened lazily, so the unpickled copy works the same.
    """

    def __init__(self, run_dir: Path, total: int, progress: Callable[[str], None] | None = None,
                 elapsed_s: float = 0.0, stop_after_failures: int = 3) -> None:
        """``elapsed_s``: search time before this recorder (earlier sessions); ``stop_after_failures``: when
        the first this many trials of a session all fail for one reason, ``stop_reason`` says so (0: never)."""
        self.run_dir = Path(run_dir)
        self.total = total
        self.progress = progress
        self.stop_after_failures = stop_after_failures
        self.stop_reason: str | None = None
        self._writer = None
        self._rows: list[dict] | None = None
        self._elapsed_before = float(elapsed_s)
        self._started = time.monotonic()
        self._session: list[dict] = []

    @property
    def elapsed_s(self) -> float:
        """Search time over every session (the time between sessions not counted)."""
        return self._elapsed_before + time.monotonic() - self._started

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_writer"] = None
        state["_rows"] = None
        state["_elapsed_before"] = self.elapsed_s
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._started = time.monotonic()  # a new session: the downtime is not search time
        self._session = []
        self.stop_reason = None

    def relocate(self, run_dir: Path, progress: Callable[[str], None] | None, total: int) -> None:
        """A restored recorder: record into ``run_dir`` (the run dir may have moved), report to ``progress``."""
        self.run_dir, self.progress, self.total = Path(run_dir), progress, total
        self._rows = None

    @property
    def rows(self) -> list[dict]:
        """Recorded trials (read once from trials.jsonl), with their ids, best reward and failures kept."""
        if self._rows is None:
            self._rows = []
            self._ids: set[str] = set()
            self._best, self._failed = 0.0, 0
            for row in results.read_trials(self.run_dir):
                self._add(row)
        return self._rows

    def _add(self, row: dict) -> None:
        self._rows.append(row)
        self._ids.add(row["trial_id"])
        self._failed += row["status"] == "failed"
        if results.ok_rows([row]):
            self._best = max(self._best, row["reward"])

    def record(self, trial_id: str, result: TrialResult, extra: dict[str, Any] | None = None,
               controller_stats: dict[str, float] | None = None) -> dict | None:
        """Append ``result`` (unless ``trial_id`` was recorded before a crash); returns the row written."""
        rows = self.rows  # loads the ids recorded before a crash
        if trial_id in self._ids:
            return None  # recorded before a crash; the resumed run re-ran it
        row = trial_row(trial_id, len(rows), result, {**(extra or {}), "search_s": round(self.elapsed_s, 3)})
        results.append_trial(self.run_dir, row)
        self._add(row)
        self._session.append(row)
        self._check_failures()
        self._log(row, controller_stats or {})
        return row

    def _check_failures(self) -> None:
        k = self.stop_after_failures
        first = self._session[:k]
        if k <= 0 or len(first) < min(k, self.total) or self.stop_reason:
            return
        if all(r["status"] == "failed" for r in first) and len({_same_reason(r["reason"]) for r in first}) == 1:
            self.stop_reason = (f"search stopped: the first {len(first)} trials all failed with: "
                                f"{first[0]['reason']}; fix that, then start again (nas search ... --resume "
                                "continues this run dir)")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _tb(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard" / "search"))
        return self._writer

    def _log(self, row: dict, stats: dict[str, float]) -> None:
        index = row["index"]
        writer = self._tb()
        best = self._best
        reward = row["reward"] if isinstance(row.get("reward"), (int, float)) else 0.0
        writer.add_scalar("search/reward", reward, index)
        writer.add_scalar("search/best_reward", best, index)
        if row["status"] in results.FINISHED:
            writer.add_scalar("search/accuracy", row["accuracy"], index)
            writer.add_scalar("search/macs", row["macs"], index)
        writer.add_scalar("search/failed", self._failed, index)
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                writer.add_scalar(f"controller/{key}", value, index)
        writer.flush()
        if self.progress is not None:
            what = (f"reward {reward:.4f} acc {row['accuracy']:.3f} MACs {row['macs'] / 1e6:.1f}M"
                    if row["status"] != "failed" else f"FAILED: {row['reason']}")
            self.progress(f"[{len(self.rows)}/{self.total}] trial {row['trial_id']} {row['status']}: {what} | "
                          f"best {best:.4f} | {self.elapsed_s:.0f}s")
