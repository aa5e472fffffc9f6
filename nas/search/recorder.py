"""Records finished candidates: one ``trials.jsonl`` row each and the search-level TensorBoard scalars.

The session (``nas.search.session``) hands results over as typed
:class:`~nas.evaluators.outcome.TrialResult` s plus the extra columns of their run (a verification
seed, a grid triple, the node a trial ran on), a batch at a time: the rows of a batch are written
with one fsync (``results.append_trials``) and the scalars flushed once.  Rows are the result's fields
without the per-epoch history, with ``trial_id`` and ``index`` (the order of recording).  A trial id
recorded before (a crash between a row and the state that knew of it) is not written twice.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..evaluators.outcome import TrialResult
from . import results


def same_reason(reason: str) -> str:
    """A failure reason with its numbers blurred (sizes, ids), so one cause reads as one reason."""
    return re.sub(r"\d+(\.\d+)?", "N", reason or "")


def trial_row(trial_id: str, index: int, result: TrialResult, extra: dict[str, Any] | None = None) -> dict:
    """The ``trials.jsonl`` row of a finished trial."""
    row = result.to_dict()
    row.pop("history", None)
    return {"trial_id": trial_id, "index": index, **row, **(extra or {})}


class TrialRecorder:
    """Appends finished trials to trials.jsonl and writes search-level TensorBoard scalars."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._writer = None
        self._rows: list[dict] | None = None

    @property
    def rows(self) -> list[dict]:
        """Recorded trials (read once from trials.jsonl), with their ids, best reward and failures kept."""
        if self._rows is None:
            self._rows = []
            self._ids: dict[str, dict] = {}
            self._best, self._failed = 0.0, 0
            for row in results.read_trials(self.run_dir):
                self._add(row)
        return self._rows

    def _add(self, row: dict) -> None:
        self._rows.append(row)
        self._ids.setdefault(row["trial_id"], row)
        self._failed += row["status"] == "failed"
        if results.ok_rows([row]):
            self._best = max(self._best, row["reward"])

    def row_of(self, trial_id: str) -> dict | None:
        """The recorded row of ``trial_id`` (None when it has none)."""
        self.rows
        return self._ids.get(trial_id)

    def record(self, trial_id: str, result: TrialResult, extra: dict[str, Any] | None = None,
               controller_stats: dict[str, float] | None = None) -> dict | None:
        """Append ``result`` (unless ``trial_id`` was recorded before); returns the row written."""
        return self.record_many([(trial_id, result, extra)], controller_stats)[0]

    def record_many(self, entries: list[tuple[str, TrialResult, dict[str, Any] | None]],
                    controller_stats: dict[str, float] | None = None) -> list[dict | None]:
        """Append every new ``(trial_id, result, extra)`` with one fsync; the rows written (None: a repeat)."""
        rows = self.rows
        best_before, failed_before = self._best, self._failed
        out: list[dict | None] = []
        new: list[dict] = []
        for trial_id, result, extra in entries:
            if trial_id in self._ids:
                out.append(None)
                continue
            row = trial_row(trial_id, len(rows), result, extra)
            self._add(row)
            new.append(row)
            out.append(row)
        if new:
            results.append_trials(self.run_dir, new)
            self._log(new, controller_stats or {}, best_before, failed_before)
        return out

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _tb(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # a deep queue: add_scalar never waits on the writer thread (a cheap evaluator logs thousands a second)
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard" / "search"), max_queue=100_000,
                                         flush_secs=10)
        return self._writer

    def _log(self, rows: list[dict], stats: dict[str, float], best: float, failed: int) -> None:
        writer = self._tb()
        for row in rows:
            index = row["index"]
            reward = row["reward"] if isinstance(row.get("reward"), (int, float)) else 0.0
            failed += row["status"] == "failed"
            if results.ok_rows([row]):
                best = max(best, row["reward"])
            writer.add_scalar("search/reward", reward, index)
            writer.add_scalar("search/best_reward", best, index)
            if row["status"] in results.FINISHED:
                writer.add_scalar("search/accuracy", row["accuracy"], index)
                writer.add_scalar("search/macs", row["macs"], index)
            writer.add_scalar("search/failed", failed, index)
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                writer.add_scalar(f"controller/{key}", value, rows[-1]["index"])
        # no flush here: the writer's thread writes in the background (every flush_secs) and close() flushes
