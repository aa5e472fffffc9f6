"""Progress a person reads: rate and ETA lines, per-epoch logs (metrics.jsonl + TensorBoard), tailing them.

* :class:`Rate`: done / total, the rate this session and the ETA, as one line (``duration`` formats);
* :class:`Heartbeat`: a daemon thread calling a function every ``every_s`` seconds (a stage whose work
  comes in long pieces -- a 26 s training -- still prints at least that often);
* :class:`EpochLog`: what a training loop writes after every epoch -- one JSON line in
  ``metrics.jsonl`` and TensorBoard scalars (``tensorboard/<name>``);
* :class:`JsonlTail`: a thread calling ``on_line`` once per new line of such a file (how the driver
  prints the epochs of Ray Train workers, once each).

Library code hands lines to a ``progress`` callable; only the CLI prints them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Hashable

#: The longest a stage goes without a progress line.
HEARTBEAT_S = 10.0
METRICS = "metrics.jsonl"


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Rate:
    """Done out of total, and the rate and ETA measured over this session (``start`` counts from creation)."""

    def __init__(self, total: int, done: int = 0, unit: str = "candidates") -> None:
        self.total, self.unit = total, unit
        self.done_before = done   # finished in earlier sessions: not part of this session's rate
        self.done = done
        self.start = time.monotonic()

    def add(self, n: int = 1) -> None:
        self.done += n

    @property
    def per_s(self) -> float | None:
        elapsed = time.monotonic() - self.start
        new = self.done - self.done_before
        return new / elapsed if new > 0 and elapsed > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.per_s
        return (self.total - self.done) / rate if rate else None

    def line(self) -> str:
        rate = self.per_s
        speed = (f"{rate:.3g} {self.unit}/s" if rate is None or rate >= 0.1 else f"{1 / rate:.0f} s a "
                 f"{self.unit.rstrip('s')}") if rate else "rate ?"
        return f"[{self.done}/{self.total}] {speed}, ETA {duration(self.eta_s)}"


class Heartbeat(threading.Thread):
    """Calls ``beat()`` every ``every_s`` seconds until ``stop()`` (a daemon: never keeps a process alive)."""

    def __init__(self, beat: Callable[[], None], every_s: float = HEARTBEAT_S) -> None:
        super().__init__(daemon=True, name="nas-heartbeat")
        self.beat, self.every_s = beat, every_s
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every_s):
            self.beat()

    def stop(self) -> None:
        self._halt.set()


class EpochLog:
    """Per-epoch metrics of a training run: appended to ``<run_dir>/metrics.jsonl`` and TensorBoard.

    Numeric metrics become scalars ``<name>/<key>`` at step ``epoch`` (``tensorboard --logdir RUN_DIR``).
    """

    def __init__(self, run_dir: str | Path, name: str) -> None:
        self.run_dir, self.name = Path(run_dir), name
        self._writer = None

    def write(self, metrics: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics, sort_keys=True) + "\n")
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard" / self.name))
        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self._writer.add_scalar(f"{self.name}/{key}", value, int(metrics["epoch"]))
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_jsonl(path: Path) -> list[dict]:
    """The whole lines of a JSON-lines file (a line being written, or a torn one, ends the read)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


class JsonlTail(threading.Thread):
    """Polls a JSON-lines file; calls ``on_line(row)`` once per row whose ``key(row)`` is new.

    Rows present when it starts are not reported (a resumed run prints only its own epochs);
    ``finish()`` stops it after one last poll.
    """

    def __init__(self, path: str | Path, on_line: Callable[[dict], None],
                 key: Callable[[dict], Hashable] = lambda row: row.get("epoch")) -> None:
        super().__init__(daemon=True, name="nas-tail")
        self.path, self.on_line, self.key = Path(path), on_line, key
        self.seen = {key(row) for row in read_jsonl(self.path)}
        self._halt = threading.Event()

    def poll(self) -> None:
        for row in read_jsonl(self.path):
            if self.key(row) not in self.seen:
                self.seen.add(self.key(row))
                self.on_line(row)

    def run(self) -> None:
        while not self._halt.wait(0.5):
            self.poll()

    def finish(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
        self.poll()


__all__ = ["EpochLog", "HEARTBEAT_S", "Heartbeat", "JsonlTail", "METRICS", "Rate", "duration", "read_jsonl"]
