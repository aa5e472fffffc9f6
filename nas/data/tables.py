"""Tabular benchmarks: a converged ground truth for every network of a space (numpy/json, no torch).

A tabular benchmark trains every network of a search space to convergence, several times
(NAS-Bench-101/201/301, NAS-Bench-Macro; NNI reads several as ``nni.nas.benchmark``), so that
evaluators and controllers are judged against the real thing at no cost.  A
:class:`BenchmarkTable` holds one :class:`TableRecord` per distinct network, keyed by
``search_spaces.network_key``: aliases (genotypes that build the same network) find the same
record.

Sources (:func:`load_table`):

* ``nas-bench-macro`` -- the shipped NAS-Bench-Macro (Su et al. 2021, arXiv:2103.11922,
  Apache-2.0; ``nas/builtin/nas-bench-macro/``): 6,561 keys of 8 digits, which are the
  decisions of the ``nas-bench-macro`` search space in order; 3,969 distinct networks, three
  CIFAR-10 trainings each (percent in the file, fractions here), ``params`` and ``flops``
  (multiply-adds at 32x32).
* a user's table, JSON or CSV, keyed by genotype text (``Genotype.to_string()``; a name of the
  reference zoo or a timm string works too), accuracies as fractions in [0, 1], one per
  recorded training (seed):

  JSON::

      {"format": "effnas-table/1",
       "networks": {"r1_k3_s11_e1_i32_o16,...": {"accuracy": [0.912, 0.915], "params": 1234, "macs": 5678}}}

  CSV: a header ``genotype,accuracy_0[,accuracy_1 ...][,params][,macs]`` (each ``accuracy_*``
  column one recorded training; ``params``/``macs`` optional) and one row per network; the
  genotype text in double quotes (it contains commas).

Every row is checked (accuracies are finite fractions; two rows of one network must agree) and
a mistake is a ``ValueError`` naming the row and the field.  Nothing in a table is executed
(JSON and CSV only, never pickle).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from search_spaces import Genotype, SearchSpace, get_space, network_key, resolve_genotype

TABLE_FORMAT = "effnas-table/1"
SHIPPED = {"nas-bench-macro": ("nas-bench-macro", "nas-bench-macro_cifar10.json")}
_BUILTIN = Path(__file__).resolve().parents[1] / "builtin" / "nas-bench-macro"


@dataclass(frozen=True)
class TableRecord:
    """One network of a table: its accuracy per recorded training, and its counts when recorded."""

    accuracies: tuple[float, ...]
    params: int | None = None
    macs: int | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    def sample(self, rng: np.random.Generator) -> float:
        """One recorded training, drawn with ``rng`` (NAS-Bench-201's protocol: the search sees noise)."""
        return self.accuracies[int(rng.integers(len(self.accuracies)))]


class BenchmarkTable:
    """Distinct networks and their records; ``lookup(genotype)`` finds a genotype's network (or None)."""

    def __init__(self, name: str, rows: Mapping[tuple, tuple[Genotype, TableRecord]],
                 space: SearchSpace | None = None, source: str = "") -> None:
        if not rows:
            raise ValueError(f"table {name!r} has no networks")
        self.name = name
        self.space = space
        self.source = source
        self._rows = dict(rows)

    def __repr__(self) -> str:
        return f"BenchmarkTable({self.name!r}, networks={len(self)})"

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, genotype: Genotype) -> TableRecord | None:
        row = self._rows.get(network_key(genotype))
        return None if row is None else row[1]

    def networks(self) -> Iterator[tuple[Genotype, TableRecord]]:
        """(genotype, record) of every distinct network, in the table's order (one genotype per network)."""
        return iter(self._rows.values())

    def training_noise(self) -> float | None:
        """The standard deviation of one recorded training around its network's mean (the root of the mean, over
        networks with several trainings, of their trainings' variance about their mean); None without repeats."""
        spreads = [np.var(record.accuracies) for _, record in self._rows.values() if len(record.accuracies) > 1]
        return float(np.sqrt(np.mean(spreads))) if spreads else None

    def means(self) -> np.ndarray:
        return np.array([record.mean for _, record in self._rows.values()])

    def rank_of(self, accuracy: float) -> tuple[int, float]:
        """(rank, percentile) of a mean accuracy among the table's networks: rank 1 is the best;
        the percentile is the share of networks at or below it (100 = the best)."""
        means = self.means()
        rank = 1 + int(np.count_nonzero(means > accuracy))
        return rank, 100.0 * float(np.count_nonzero(means <= accuracy)) / len(means)


def load_table(source: str | Path, base_dir: str | Path | None = None) -> BenchmarkTable:
    """A shipped table by name (``nas-bench-macro``) or a user's ``.json``/``.csv`` file."""
    if isinstance(source, str) and source in SHIPPED:
        space_name, file = SHIPPED[source]
        return _nas_bench_macro(_BUILTIN / file, get_space(space_name))
    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if path.is_dir():
        raise ValueError(f"table {str(path)!r} is a folder; give a .json or .csv file or one of: {', '.join(SHIPPED)}")
    if not path.is_file():
        raise ValueError(f"table {str(source)!r} does not exist; give a .json or .csv file or one of: "
                         f"{', '.join(SHIPPED)}")
    if path.suffix.lower() == ".json":
        return _user_table(path, _json_rows(path))
    if path.suffix.lower() == ".csv":
        return _user_table(path, _csv_rows(path))
    raise ValueError(f"table {str(path)!r}: the format is told by the suffix, .json or .csv; got {path.suffix!r}")


def _nas_bench_macro(path: Path, space: SearchSpace) -> BenchmarkTable:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    rows: dict[tuple, tuple[Genotype, TableRecord]] = {}
    for key in sorted(data):
        value = data[key]
        genotype = space.decode([int(c) for c in key])
        record = TableRecord(tuple(float(a) / 100.0 for a in value["test_acc"]), int(value["params"]),
                             int(value["flops"]))
        rows.setdefault(network_key(genotype), (genotype, record))  # aliased keys carry the same numbers
    return BenchmarkTable("nas-bench-macro", rows, space, source=str(path))


def _json_rows(path: Path) -> Iterator[tuple[str, str, Mapping]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"table {str(path)!r}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or not isinstance(data.get("networks"), dict):
        raise ValueError(f"table {str(path)!r}: a JSON table is an object with \"format\": \"{TABLE_FORMAT}\" and "
                         "\"networks\": {GENOTYPE_TEXT: {\"accuracy\": [...], \"params\": N, \"macs\": N}}")
    unknown = sorted(set(data) - {"format", "networks", "description", "space"})
    if unknown:
        raise ValueError(f"table {str(path)!r}: unknown key(s) {unknown}; allowed: format, networks, description, space")
    for text, entry in data["networks"].items():
        yield f"networks[{text!r}]", text, entry


def _csv_rows(path: Path) -> Iterator[tuple[str, str, Mapping]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        accs = [c for c in columns if c.startswith("accuracy_")]
        unknown = [c for c in columns if c not in ("genotype", "params", "macs") and c not in accs]
        if "genotype" not in columns or not accs or unknown:
            raise ValueError(f"table {str(path)!r}: a CSV table has the columns genotype, accuracy_0[, accuracy_1 "
                             f"...][, params][, macs]; got {', '.join(columns) or 'no header'}")
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"table {str(path)!r} line {line}: {len(columns)} columns expected; quote the "
                                 "genotype text (it contains commas)")
            entry: dict[str, object] = {"accuracy": [_number(row[c], f"line {line} {c}", path) for c in accs]}
            for name in ("params", "macs"):
                if row.get(name) not in (None, ""):
                    entry[name] = _number(row[name], f"line {line} {name}", path)
            yield f"line {line}", row["genotype"], entry


def _number(text: str, where: str, path: Path) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"table {str(path)!r} {where}: {text!r} is not a number") from None


def _user_table(path: Path, entries: Iterator[tuple[str, str, Mapping]]) -> BenchmarkTable:
    rows: dict[tuple, tuple[Genotype, TableRecord]] = {}
    for where, text, entry in entries:
        where = f"table {str(path)!r} {where}"
        try:
            genotype = resolve_genotype(str(text))
        except ValueError as err:
            raise ValueError(f"{where}: genotype: {err}") from None
        record = _record(entry, where)
        key = network_key(genotype)
        if key in rows and rows[key][1] != record:
            raise ValueError(f"{where}: the network of {text!r} is already in the table as "
                             f"{rows[key][0].to_string()!r} with other numbers; keep one row per network")
        rows.setdefault(key, (genotype, record))
    return BenchmarkTable(path.stem, rows, source=str(path))


def _record(entry: object, where: str) -> TableRecord:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping with accuracy (and optional params, macs), "
                         f"got {type(entry).__name__}")
    unknown = sorted(set(entry) - {"accuracy", "params", "macs"})
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: accuracy, params, macs")
    accs = entry.get("accuracy")
    if isinstance(accs, (int, float)) and not isinstance(accs, bool):
        accs = [accs]
    if not isinstance(accs, (list, tuple)) or not accs:
        raise ValueError(f"{where}: accuracy must be a fraction or a non-empty list of fractions (one per training)")
    for a in accs:
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or not 0.0 <= a <= 1.0:
            raise ValueError(f"{where}: accuracy {a!r} is not a fraction in [0, 1]; divide percentages by 100")
    counts = {}
    for name in ("params", "macs"):
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
            raise ValueError(f"{where}: {name} must be a non-negative integer, got {value!r}")
        counts[name] = int(value)
    return TableRecord(tuple(float(a) for a in accs), counts.get("params"), counts.get("macs"))
