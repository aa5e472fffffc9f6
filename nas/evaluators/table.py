"""The table evaluator: a candidate's accuracy looked up in a converged tabular benchmark, microseconds each.

A tabular benchmark (``nas.data.tables``: the shipped NAS-Bench-Macro, or a user's JSON/CSV table)
holds every network of a space trained to convergence, several times.  ``evaluator: {kind: table,
table: nas-bench-macro | PATH, sample: seed | mean}`` scores a candidate by its network's record:

* ``sample: seed`` -- one recorded training, as NAS-Bench-201's protocol (Dong & Yang 2020,
  arXiv:2001.00326, section 5): the search sees the benchmark's own noise.  The draw is keyed by
  the search's seed (``controller.seed``) and the network, so a run is deterministic and a resumed
  run draws what the interrupted one drew; the search and its random baseline (same seed) see the
  same recorded run of a network they both propose;
* ``sample: mean`` -- the mean over the recorded trainings (the converged truth itself).

Cost and reward come from :class:`~nas.evaluators.outcome.Scoring` on the TARGET model, as for every
evaluator.  Where the table records ``params``/``macs`` and the target is built at the table's size,
:func:`check` compares them with the analytic count of a few networks: a mismatch is a **warning**
(printed at the start and in the report), not an error -- the reward's cost is the target model's by
design, and a table measured at another size or with another counting convention still ranks
accuracy.  A genotype not in the table is a ``failed`` result naming the table; the session's
failure net stops a search whose first candidates all miss it.

Placement ``driver``: the table is loaded once in the session's process and scored in batches; no Ray.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path
from typing import Sequence


from search_spaces import Genotype, network_key

from ..config import ConfigError
from ..data.tables import BenchmarkTable, TableRecord, load_table
from ..experiment.search import Experiment
from .base import EvaluatorInfo, EvaluatorKind
from .outcome import Scoring, TrialResult

#: Networks whose analytic counts :func:`check` compares with the table's own columns.
COUNT_CHECKS = 8


@lru_cache(maxsize=4)
def cached_table(source: str) -> BenchmarkTable:
    """A table loaded once per process (the table of a 3,969-network benchmark loads in ~0.1 s)."""
    return load_table(source)


def table_source(exp: Experiment) -> str:
    """The ``evaluator.table`` of ``exp``: a shipped name, or a path (relative to the working directory)."""
    if not exp.evaluator.table:
        raise ConfigError("evaluator.table: required with evaluator.kind 'table'; give nas-bench-macro or the path "
                          "of a .json/.csv table (nas/data/tables.py documents the schema)")
    return str(exp.evaluator.table)


def seeded_index(seed: int, key: str, n: int) -> int:
    """A recorded run of ``n``, drawn by (search seed, network): deterministic, the same on resume."""
    digest = hashlib.blake2b(f"{seed}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n


class TableEvaluator:
    """Scores genotypes by their network's record in ``table``: one :class:`TrialResult` each, never raises."""

    def __init__(self, table: BenchmarkTable, objective, target, sample: str = "seed", seed: int = 0) -> None:
        self.table, self.sample, self.seed = table, sample, int(seed)
        self.scoring = Scoring(objective, target)

    @classmethod
    def from_experiment(cls, exp: Experiment) -> "TableEvaluator":
        return cls(cached_table(table_source(exp)), exp.objective, exp.target, exp.evaluator.sample,
                   exp.controller.seed)

    def accuracy(self, record: TableRecord, key: str) -> float:
        if self.sample == "mean":
            return record.mean
        return record.accuracies[seeded_index(self.seed, key, len(record.accuracies))]

    def score_one(self, text: str) -> TrialResult:
        start = time.perf_counter()
        try:
            genotype = Genotype.from_string(text)
            counts = self.scoring.counts(text, genotype)
        except Exception as err:  # a candidate the target cannot be built or costed for
            return self.scoring.failed(text, f"cost failed: {type(err).__name__}: {err}", start)
        key = network_key(genotype)
        record = self.table.lookup(genotype)
        if record is None:
            return self.scoring.failed(text, f"not in table {self.table.name!r} ({len(self.table)} networks): no "
                                             "converged accuracy for this network", start, **counts)
        return self.scoring.result(text, self.accuracy(record, str(key)), start, counts, epochs=0)

    def score(self, genotypes: Sequence[Genotype | str]) -> list[TrialResult]:
        return [self.score_one(g if isinstance(g, str) else g.to_string()) for g in genotypes]


def check(exp: Experiment, address: str | None = None) -> EvaluatorInfo:
    """The table loads and fits the experiment's space (one line each); its counts against the target's."""
    source = table_source(exp)
    table = load_fitting(source, exp.search_space, "evaluator.table")
    seeded = exp.evaluator.sample == "seed"
    spread = table.training_noise() if seeded else None
    where = "seed (one recorded training a candidate)" if seeded else "mean over trainings"
    return EvaluatorInfo(noise=spread, known_noise=spread if seeded else 0.0,
                         warnings=tuple(count_warnings(table, exp)),
                         description=f"table {table.name} ({len(table)} networks, {where})")


def load_fitting(source: str, space, field: str) -> BenchmarkTable:
    """The table of ``source``, checked to be a table of ``space``; ConfigError naming ``field`` otherwise."""
    try:
        table = cached_table(source)
    except (ValueError, OSError) as err:
        raise ConfigError(f"{field}: {err}") from None
    if table.space is not None and table.space.name != space.name:
        raise ConfigError(f"{field}: {table.name!r} is a benchmark of space {table.space.name!r}, the "
                          f"experiment searches {space.name!r}; set space: {table.space.name}")
    for genotype, _ in table.networks():
        if not space.contains(genotype):
            try:
                space.validate(genotype)
                reason = "not a genotype of the space"
            except (ValueError, TypeError) as err:
                reason = str(err)
            raise ConfigError(f"{field}: {source}: {genotype.to_string()!r} is not in space {space.name!r} "
                              f"({reason}); use a table of this space or set space: to the table's")
    return table


def count_warnings(table: BenchmarkTable, exp: Experiment) -> list[str]:
    """A warning where the table's params/macs differ from the target model's analytic counts."""
    scoring = Scoring(exp.objective, exp.target)
    wrong = []
    for i, (genotype, record) in enumerate(table.networks()):
        if i >= COUNT_CHECKS:
            break
        counts = scoring.counts(genotype.to_string())
        for name in ("params", "macs"):
            recorded = getattr(record, name)
            if recorded is not None and abs(counts[name] - recorded) > 0.01 * max(recorded, 1):
                wrong.append((name, recorded, counts[name], genotype.to_string()))
    if not wrong:
        return []
    name, recorded, counted, text = wrong[0]
    return [f"table {table.name}: its {name} ({recorded:,}) differ from the target model's analytic count "
            f"({counted:,}) for {text} ({len(wrong)} of {2 * COUNT_CHECKS} counts checked differ by > 1%); "
            "the reward's cost is the target model's -- set target: to the table's size (e.g. resolution and "
            "num_classes) to make them agree"]


KIND = EvaluatorKind("table", check=check, build=TableEvaluator.from_experiment, placement=lambda exp: "driver",
                     accuracy_label="benchmark table (converged training)")

__all__ = ["KIND", "TableEvaluator", "cached_table", "check", "count_warnings", "load_fitting", "seeded_index",
           "table_source"]
