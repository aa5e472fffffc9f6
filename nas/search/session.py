"""One search session: every rule of a search, written once, for every evaluator and every stage.

A :class:`Session` asks its proposer -- a controller (``ControllerProposer``), or a fixed list of
candidates (``ListProposer``: verification, the scale grid) -- for candidates, hands them to a pump
that scores them where the evaluator runs (``nas.search.batches``: batches in the driver or in
long-lived workers; ``nas.ray.tune``: one Ray Tune trial each), and records what comes back.  It
owns, for all of them:

* the budget: exactly ``total`` rows in ``trials.jsonl`` (earlier sessions included);
* the time limit over all sessions (``search_s``, saved in the state; downtime not counted);
* the failure net: when the first ``stop_after_failures`` results of a session all failed for one
  reason, the search stops with that reason (``SearchStopped``) instead of burning the budget;
* the recorder (``trials.jsonl``, TensorBoard) and the resume state;
* progress with rate and ETA (a line per result where results take seconds -- ``every_result`` --,
  else at most every 2 s; at least every ``HEARTBEAT_S`` seconds either way) and the warnings of a
  meaningless search (every score at chance level, or a spread below the evaluator's own noise);
* the interrupt path: Ctrl-C ends it with the summary written and ``SearchInterrupted`` naming the
  stage, how many of how many finished and the one command that continues the whole run.

Resume after Ctrl-C or SIGKILL loses nothing and repeats nothing.  ``candidates.jsonl`` is the
session's write-ahead log: every asked candidate (trial id, genotype, extras), appended and fsync'ed
before it is handed out.  ``search_state.json`` (atomic) holds the proposer's ``state_dict()``, the
next trial index, the search time, the warnings and ``pending``: the candidates asked but not yet
told to the proposer.  It is saved at most every ``SAVE_EVERY_S`` seconds where candidates take
milliseconds, after every change where they take seconds (Tune trials), and when a session ends.
On resume the proposer comes back from the state; a pending candidate whose row is in
``trials.jsonl`` is told from its row, the others are scored again; a candidate told but whose row is
gone (a torn last line) is scored again and recorded without a second tell.  Candidates asked after
the last save are replayed: the restored proposer asks again, and where it asks the same genotype
under the same trial id (a seeded controller told the same results in the same order does) a
recorded row is told from the row and not written twice; where it diverges, the recorded rows are
learned from and the new candidates take fresh ids -- so the run ends with every candidate exactly
once and exactly ``total`` rows.  Trial ids are ``c<index>`` in ask order.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from search_spaces import Genotype

from ..errors import SearchInterrupted, SearchStopped
from ..evaluators.base import EvaluatorInfo
from ..evaluators.outcome import TrialResult
from ..experiment.run_dir import STATE, resume_command
from ..files import atomic_write
from ..progress import HEARTBEAT_S, Heartbeat, Rate
from . import results
from .recorder import TrialRecorder, same_reason

log = logging.getLogger(__name__)

STATE_FORMAT = 2
CANDIDATES = "candidates.jsonl"
#: The resume state is saved at most this often (a controller's state grows with what it evaluated); what was
#: asked and recorded after the last save is replayed on resume (module docstring).
SAVE_EVERY_S = 1.0
#: The meaningless-result check looks at the first this many scored candidates of a stage.
WARN_AFTER = 20


@dataclass(frozen=True)
class Candidate:
    """One asked candidate: its trial id, genotype string and extra columns (a verification seed, a triple)."""

    trial_id: str
    genotype: str
    extra: dict = field(default_factory=dict)
    #: False for a candidate scored again after its row was lost: the proposer was told already.
    tell: bool = True


class Proposer(Protocol):
    def ask(self) -> tuple[str, dict]: ...

    def tell(self, genotype: str, reward: float | None) -> None: ...

    def learn(self, rows: list[dict]) -> int: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def best_reward(self) -> float | None: ...

    def recommend(self) -> str | None: ...

    def stats(self) -> dict[str, float]: ...


def trial_id(index: int) -> str:
    return f"c{index:05d}"


class Session:
    """The rules of one stage's search in ``run_dir`` (see the module docstring); pumps call ``ask``/``record``."""

    def __init__(self, run_dir: Path, proposer: Proposer, total: int, *, stage: str = "search",
                 root: Path | None = None, resume: bool = False, time_limit_s: float | None = None,
                 stop_after_failures: int = 3, progress: Callable[[str], None] | None = None,
                 info: EvaluatorInfo | None = None, unit: str = "candidates", command: str | None = None,
                 every_result: bool = False, save_every_s: float = SAVE_EVERY_S) -> None:
        self.run_dir, self.proposer, self.total, self.stage = Path(run_dir), proposer, total, stage
        self.root = Path(root or run_dir)
        self.command = command or resume_command(self.root)
        self.time_limit_s, self.stop_after_failures = time_limit_s, stop_after_failures
        self.info, self.unit, self.say = info or EvaluatorInfo(), unit, progress
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.recorder = TrialRecorder(self.run_dir)
        self.stop_reason: str | None = None
        self.interrupted = False
        self.warnings: list[str] = []
        self._lock = threading.RLock()
        self._queue: list[Candidate] = []   # asked earlier, to score (again) before asking anew
        self._out: dict[str, Candidate] = {}  # handed to a pump, not recorded yet
        self._pending: list[str] = []        # asked, not yet told to the proposer (saved)
        self._session_rows: list[dict] = []
        self._next_index, self._search_before, self.told_from_rows = 0, 0.0, 0
        self._replay: dict[str, tuple[str, dict]] = {}  # asked after the last save: asked again on resume
        self._saved_at, self._save_every_s = 0.0, save_every_s
        self._every_result, self._last_line, self._meaning_checked = every_result, 0.0, False
        self.rate = Rate(total, len(self.recorder.rows), unit)
        self._start(resume)

    # -- start and resume ---------------------------------------------------------------------------------------

    def _start(self, resume: bool) -> None:
        state = read_state(self.run_dir) if resume else None
        rows = self.recorder.rows
        if state is None:
            if rows:  # a run dir without resume state: learn from the records, never propose them again
                learned = self.proposer.learn(rows)
                log.info("%s: continuing with a fresh proposer that learned from %d recorded trial(s)", self.stage,
                         learned)
            taken = {r["trial_id"] for r in rows}
            self._next_index = len(rows)
            while trial_id(self._next_index) in taken:
                self._next_index += 1
            self._search_before = results.search_time(rows)
            self.warnings = []
            self._save()
            return
        self.proposer.load_state_dict(state["proposer"])
        self._next_index, self._search_before = int(state["next_index"]), float(state.get("search_s", 0.0))
        self.warnings = list(state.get("warnings", []))
        self._resume_candidates(state, rows)

    def _resume_candidates(self, state: dict, rows: list[dict]) -> None:
        asked = read_candidates(self.run_dir)
        recorded = {r["trial_id"]: r for r in rows}
        pending = [tid for tid in state.get("pending", []) if tid in asked]
        for tid in pending:  # in ask order, so the tells come in the uninterrupted order
            text, extra = asked[tid]
            if tid in recorded:
                self.proposer.tell(text, TrialResult.from_dict(recorded[tid]).told_reward)
                self.told_from_rows += 1
            else:
                self._queue.append(Candidate(tid, text, extra))
                self._pending.append(tid)
        waiting = set(pending)
        for index in range(self._next_index):
            tid = trial_id(index)
            if tid in asked and tid not in recorded and tid not in waiting:  # told, but its row is lost
                self._queue.append(Candidate(tid, *asked[tid], tell=False))
        self._queue.sort(key=lambda c: c.trial_id)
        self._replay = {tid: item for tid, item in asked.items() if int(tid[1:]) >= self._next_index}
        log.info("%s resumed at trial %d: %d told from recorded rows, %d to score again", self.stage,
                 self._next_index, self.told_from_rows, len(self._queue))
        self._save()

    # -- asking -------------------------------------------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        """Search time over every session (the time between sessions not counted)."""
        return self._search_before + time.monotonic() - self.rate.start

    @property
    def time_left_s(self) -> float | None:
        return None if self.time_limit_s is None else max(0.0, self.time_limit_s - self.elapsed_s)

    @property
    def recorded(self) -> int:
        return len(self.recorder.rows)

    def stopping(self) -> bool:
        return self.interrupted or self.stop_reason is not None or self.time_left_s == 0.0

    def remaining(self) -> int:
        """Candidates still to hand out: the budget minus what is recorded and what is out."""
        return max(0, self.total - self.recorded - len(self._out))

    def ask(self, n: int = 1) -> list[Candidate]:
        """Up to ``n`` candidates to score (fewer at the end of the budget; none once stopping)."""
        from controllers.constraint import InfeasibleConstraintError

        with self._lock:
            out: list[Candidate] = []
            fresh: list[Candidate] = []
            while self._queue and len(out) < n and not self.stopping():  # asked before: never mixed with new
                if out and self._queue[0].tell != out[0].tell:
                    break
                out.append(self._queue.pop(0))
            while not out and len(fresh) < n and self.remaining() > len(fresh) and not self.stopping():
                try:
                    text, extra = self.proposer.ask()
                except InfeasibleConstraintError as err:
                    self.stop_reason = (f"{self.stage} stopped after {self.recorded} trial(s): {err}; widen "
                                        "controller.cost_min/cost_max or raise controller.max_tries, then continue "
                                        f"with `{self.command} --set controller.cost_max=...`")
                    break
                candidate = self._fresh(text, extra)
                self._pending.append(candidate.trial_id)
                fresh.append(candidate)
            out = out or fresh
            if fresh:
                append_candidates(self.run_dir, fresh)
            for c in out:
                self._out[c.trial_id] = c
            if out:
                self._save(throttle=True)
            return out

    def _fresh(self, text: str, extra: dict) -> Candidate:
        """The next trial id for a new ask; a replayed ask that diverged from the log moves past the log's ids."""
        tid = trial_id(self._next_index)
        if tid in self._replay and self._replay[tid][0] != text:
            rows = [r for r in self.recorder.rows if r["trial_id"] in self._replay]
            log.info("%s: the replayed proposer diverged at %s; it learns the %d rows recorded after the last save",
                     self.stage, tid, len(rows))
            self.proposer.learn(rows)
            self._next_index = max(int(t[1:]) for t in self._replay) + 1
            self._replay = {}
            tid = trial_id(self._next_index)
        self._replay.pop(tid, None)
        self._next_index += 1
        return Candidate(tid, text, extra)

    # -- recording ----------------------------------------------------------------------------------------------

    def record(self, candidate: Candidate, result: TrialResult, extra: dict | None = None) -> dict | None:
        """Record one result (its row, the tell, the failure net, progress); returns the row written."""
        return self.record_many([(candidate, result, extra)])[0]

    def record_many(self, items: list[tuple[Candidate, TrialResult, dict | None]]) -> list[dict | None]:
        """Record results in order with one fsync and one state save (a batch of a cheap evaluator)."""
        with self._lock:
            entries = [(c.trial_id, r, {**c.extra, **(e or {}), "search_s": round(self.elapsed_s, 3)})
                       for c, r, e in items]
            rows = self.recorder.record_many(entries, self.proposer.stats())
            for (candidate, result, _), row in zip(items, rows):
                self._out.pop(candidate.trial_id, None)
                if candidate.tell and candidate.trial_id in self._pending:
                    # a replayed candidate recorded before a crash is told what its row says (written once)
                    recorded = self.recorder.row_of(candidate.trial_id) if row is None else None
                    told = TrialResult.from_dict(recorded).told_reward if recorded is not None else result.told_reward
                    self.told_from_rows += recorded is not None
                    self.proposer.tell(candidate.genotype, told)
                    self._pending.remove(candidate.trial_id)
                if row is not None:
                    self._session_rows.append(row)
                    self.rate.add()
            self._check_failures()
            self._check_meaningless()
            self._save(throttle=True)
            self._progress(rows)
            return rows

    def release(self, candidate: Candidate) -> None:
        """A candidate handed out but not scored (the pump stopped): scored first on resume."""
        with self._lock:
            self._out.pop(candidate.trial_id, None)

    def _check_failures(self) -> None:
        k = self.stop_after_failures
        first = self._session_rows[:k]
        if k <= 0 or self.stop_reason or len(first) < min(k, self.total):
            return
        if all(r["status"] == "failed" for r in first) and len({same_reason(r["reason"]) for r in first}) == 1:
            self.stop_reason = (f"{self.stage} stopped: the first {len(first)} trials all failed with: "
                                f"{first[0]['reason']}; fix that, then continue with: {self.command}")

    def _check_meaningless(self) -> None:
        """Once, after the first ``WARN_AFTER`` scored candidates (all of a smaller budget)."""
        if self._meaning_checked or self.stage == "verify":
            return
        rows = results.ok_rows(self.recorder.rows)
        if len(rows) < min(WARN_AFTER, self.total):
            return
        self._meaning_checked = True
        text = meaningless(rows, self.info)
        if text:
            self.warn(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
            log.warning("%s: %s", self.stage, text)
            if self.say is not None:
                self.say(f"warning ({self.stage}): {text}")

    # -- state, progress, the end -------------------------------------------------------------------------------

    def _save(self, throttle: bool = False) -> None:
        """The resume state, atomically; with ``throttle`` at most every ``save_every_s`` seconds."""
        now = time.monotonic()
        if throttle and now - self._saved_at < self._save_every_s:
            return
        self._saved_at = now
        state = {"format": STATE_FORMAT, "stage": self.stage, "proposer": self.proposer.state_dict(),
                 "next_index": self._next_index, "search_s": round(self.elapsed_s, 3),
                 "pending": list(self._pending), "warnings": self.warnings,
                 "info": {"chance": self.info.chance, "noise": self.info.noise}}
        atomic_write(self.run_dir / STATE, json.dumps(state))

    def status_line(self) -> str:
        best = self.proposer.best_reward()
        if best is None:
            ok = results.best_row(self.recorder.rows)
            best = ok["reward"] if ok else None
        out = f" | {len(self._out)} running" if self._out and self.unit == "trials" else ""
        return f"{self.rate.line()} {self.stage}: best reward {'-' if best is None else f'{best:.4f}'}{out}"

    def _progress(self, rows: list[dict | None]) -> None:
        if self.say is None:
            return
        now = time.monotonic()
        if self._every_result:
            for row in rows:
                if row is not None:
                    self.say(f"{self.status_line()} | {describe_row(row)}")
            self._last_line = now
        elif now - self._last_line >= 2.0 or self.recorded >= self.total:
            self.say(self.status_line())
            self._last_line = now

    def heartbeat(self) -> None:
        with self._lock:
            if self.say is not None and time.monotonic() - self._last_line >= HEARTBEAT_S - 0.5:
                self.say(self.status_line())
                self._last_line = time.monotonic()

    def close(self) -> dict[str, Any]:
        """Save the state and write the summary (best.yaml, Pareto files) of what finished."""
        with self._lock:
            for candidate in list(self._out.values()):
                self.release(candidate)
            self._save()
            self.recorder.close()
        return results.write_summary(self.run_dir, self.proposer.recommend())

    def finish(self, interrupted: bool = False) -> dict[str, Any]:
        """:meth:`close`, then end as the session ended.

        Raises SearchInterrupted (Ctrl-C) or SearchStopped (failures, an infeasible constraint); a spent
        time limit is not an error (the summary says how many of the budget ran).
        """
        summary = self.close()
        if interrupted or self.interrupted:
            raise SearchInterrupted(self.stage, summary["trials"], self.total, self.root, self.command, self.unit)
        if self.stop_reason:
            raise SearchStopped(self.stop_reason)
        if summary["trials"] < self.total and self.time_left_s == 0.0 and self.say is not None:
            self.say(f"{self.stage}: budget.time_limit_s ({self.time_limit_s:g} s) reached after {summary['trials']} "
                     f"of {self.total} {self.unit}")
        return summary


def describe_row(row: dict) -> str:
    if row["status"] == "failed":
        return f"{row['trial_id']} FAILED: {row['reason']}"
    seed = f" seed {row['seed']}" if "seed" in row else ""
    if all(k in row for k in ("alpha", "beta", "gamma")):
        seed += f" alpha={row['alpha']:g} beta={row['beta']:g} gamma={row['gamma']:g}"
    return (f"{row['trial_id']}{seed} {row['status']}: reward {row['reward']:.4f} acc {row['accuracy']:.3f} MACs "
            f"{row['macs'] / 1e6:.1f}M")


def meaningless(rows: list[dict], info: EvaluatorInfo) -> str | None:
    """Why the scores of ``rows`` cannot rank candidates, in words, or None when they can.

    * every accuracy within two noise standard deviations of chance (a supernet that learned nothing);
    * the spread of accuracies below the evaluator's own noise (its ranking is noise).
    """
    accuracies = [float(r["accuracy"]) for r in rows]
    if len(accuracies) < 2:
        return None
    lo, hi = min(accuracies), max(accuracies)
    noise = info.noise or 0.0
    if info.chance is not None and hi <= info.chance + 2 * noise:
        return (f"every scored candidate sits at chance level (accuracy {lo:.3f}..{hi:.3f}; chance "
                f"{info.chance:.3f}): the evaluator cannot rank them -- the results below mean nothing")
    spread = statistics.stdev(accuracies)
    if noise and spread < noise:
        return (f"the scores' spread (sd {spread:.4f} over {len(accuracies)} candidates) is below the evaluator's own "
                f"noise (sd {noise:.4f}): their ranking is noise")
    return None


def read_state(run_dir: Path) -> dict | None:
    path = Path(run_dir) / STATE
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: search state format {state.get('format')!r} is not supported (this version reads "
                         f"{STATE_FORMAT}); start a new run (set output.name)")
    return state


def has_state(run_dir: Path) -> bool:
    return (Path(run_dir) / STATE).is_file()


def append_candidates(run_dir: Path, candidates: list[Candidate]) -> None:
    """The write-ahead log: asked candidates, durable before they are handed out."""
    text = "".join(json.dumps({"trial_id": c.trial_id, "genotype": c.genotype, "extra": c.extra}) + "\n"
                   for c in candidates)
    with open(Path(run_dir) / CANDIDATES, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                text = "\n" + text
        f.write(text.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_candidates(run_dir: Path) -> dict[str, tuple[str, dict]]:
    """trial id -> (genotype, extra) of every asked candidate (a later line for an id wins; torn lines skipped)."""
    path = Path(run_dir) / CANDIDATES
    out: dict[str, tuple[str, dict]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
            out[item["trial_id"]] = (item["genotype"], dict(item.get("extra") or {}))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return out


class ControllerProposer:
    """A controller (``controllers``) as the session's proposer: genotypes as canonical strings."""

    def __init__(self, controller) -> None:
        self.controller = controller
        self._asked: dict[str, Genotype] = {}  # the Genotype of each pending ask (parsing a string is slow)

    def ask(self) -> tuple[str, dict]:
        genotype = self.controller.ask()
        text = genotype.to_string()
        self._asked[text] = genotype
        return text, {}

    def tell(self, genotype: str, reward: float | None) -> None:
        asked = self._asked.pop(genotype, None)
        self.controller.tell(asked if asked is not None else Genotype.from_string(genotype), reward)

    def learn(self, rows: list[dict]) -> int:
        from .resume import seed_controller

        return seed_controller(self.controller, rows)

    def state_dict(self) -> dict:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state)

    def best_reward(self) -> float | None:
        best = self.controller.best
        return best[1] if best else None

    def recommend(self) -> str | None:
        """The controller's recommendation (``Controller.recommend``) as a genotype string, or None."""
        genotype = self.controller.recommend()
        return None if genotype is None else genotype.to_string()

    def stats(self) -> dict[str, float]:
        return self.controller.stats()


class ListProposer:
    """A fixed list of candidates, in order (verification: genotype x seed; the scale grid: one per triple)."""

    def __init__(self, items: list[tuple[str, dict]]) -> None:
        self.items, self.position = list(items), 0

    def ask(self) -> tuple[str, dict]:
        item = self.items[self.position]
        self.position += 1
        return item

    def tell(self, genotype: str, reward: float | None) -> None:
        pass

    def learn(self, rows: list[dict]) -> int:
        done = {(r.get("genotype"), tuple(sorted((k, r.get(k)) for k in self._keys()))) for r in rows}
        left = [item for item in self.items if (item[0], tuple(sorted(item[1].items()))) not in done]
        self.items, self.position = left, 0
        return len(rows)

    def _keys(self) -> set[str]:
        return {k for _, extra in self.items for k in extra}

    def state_dict(self) -> dict:
        return {"position": self.position, "items": [[g, e] for g, e in self.items]}

    def load_state_dict(self, state: dict) -> None:
        self.items = [(g, dict(e)) for g, e in state["items"]]
        self.position = int(state["position"])

    def best_reward(self) -> float | None:
        return None

    def recommend(self) -> str | None:
        return None

    def stats(self) -> dict[str, float]:
        return {}


class InterruptWatch:
    """While a pump runs: remembers a SIGINT (Ctrl-C) so an error it causes elsewhere reads as an interrupt.

    Ctrl-C in a terminal reaches the whole process group: Ray's workers may die of it before the driver's
    own KeyboardInterrupt arrives.  The first SIGINT sets ``seen`` and raises KeyboardInterrupt here (as
    Python would); the handler found is put back on exit.  Outside the main thread it does nothing.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous = None

    def __enter__(self) -> "InterruptWatch":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_pump(session: Session, pump: Callable[[Session], None]) -> dict[str, Any]:
    """Run ``pump(session)`` to the end of the budget with a heartbeat, then ``session.finish``.

    Ctrl-C (or an error that a Ctrl-C caused) ends it as interrupted; the summary is written either way.
    """
    beat = Heartbeat(session.heartbeat)
    beat.start()
    watch = InterruptWatch()
    try:
        with watch:
            pump(session)
    except KeyboardInterrupt:
        session.interrupted = True
    except Exception:
        if not watch.seen:
            beat.stop()
            session.close()  # the summary of what finished, then the error
            raise
        session.interrupted = True
    finally:
        beat.stop()
    session.interrupted = session.interrupted or watch.seen
    return session.finish()


__all__ = ["CANDIDATES", "Candidate", "ControllerProposer", "InterruptWatch", "ListProposer", "Proposer", "STATE",
           "Session", "has_state", "meaningless", "read_candidates", "read_state", "run_pump", "trial_id"]
