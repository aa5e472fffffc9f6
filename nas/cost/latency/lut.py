"""The latency lookup table: one measured entry per distinct layer, saved with its target.

As in MnasNet's and FBNet's latency tables (Wu et al. 2019, arXiv:1812.03443,
section 3.2), a network's latency is predicted as the sum of the latencies of
its layers, each measured once on the target in isolation.  The layers are the
ones of :func:`efficientnet.walk` -- the same walk the module builder and the
MACs count use -- and an entry's key is ``LayerSpec.key()`` (kind, in/out
channels, kernel, stride, expansion, SE ratio, residual, input size,
activation, SE activation), so the table and the model cannot drift apart.
Version 2 added the activations to the key (a version-1 table was measured
with SiLU whatever the genotype said: rebuild it).  The pooling + classifier tail is one
more entry (kind ``classifier``).

Summing isolated layers misses what the whole network adds or saves (caches
that are cold for a layer inside the model, one Python call instead of one per
layer), so the table also holds a linear calibration ``scale * sum + offset_ms``
fitted on a few genotypes measured end to end (see ``nas.cost.latency.build``).

File format (JSON, or YAML for a ``.yaml``/``.yml`` path): ``format``,
``version``, ``target`` (where and how it was measured: backend, device name,
threads, pinned CPUs, library versions, date), ``settings`` (the
:class:`MeasureSettings`), ``model`` (space, resolution, width, depth,
classes), ``calibration`` and ``entries`` (one object per layer).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml
from torch import nn

from efficientnet import LayerSpec, walk
from efficientnet.blocks import Norms
from efficientnet.blocks import layer_module as _layer_module
from search_spaces import Genotype
from search_spaces.ops import OP_NAMES

from ...files import atomic_write
from ..target import TargetModel
from .measure import Measurement, MeasureSettings

FORMAT = "effnas-latency-table"
VERSION = 2
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C emitter where PyYAML has it: 10x faster
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY_FIELDS = ("kind", "in", "out", "kernel", "stride", "expand", "se", "residual", "size", "act", "se_act")


class MissingLayerError(ValueError):
    """A genotype needs a layer the table has no entry for."""


def classifier_layer(head_filters: int, num_classes: int, size: int) -> LayerSpec:
    """The pooling + dropout + linear tail as a pseudo-layer (kind ``classifier``)."""
    return LayerSpec("classifier", head_filters, num_classes, in_size=size, index=-1, act="")


def model_layers(genotype: Genotype, target: TargetModel) -> list[LayerSpec]:
    """Every layer of ``genotype``'s target model in forward order: the walk (identity layers have no module
    and are left out, as in the model) plus the classifier tail."""
    spec = target.spec(genotype)
    layers = [layer for layer in walk(spec.arch(), spec.resolution) if not layer.is_identity]  # no module, no time
    if spec.num_classes:
        layers.append(classifier_layer(layers[-1].out_filters, spec.num_classes, layers[-1].out_size))
    return layers


def layer_module(spec: LayerSpec) -> nn.Module:
    """The module of one layer, built by the same function the model builder uses."""
    if spec.kind == "classifier":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(spec.in_filters, spec.out_filters))
    return _layer_module(spec, Norms())


def layer_input_shape(spec: LayerSpec) -> tuple[int, int, int]:
    return (spec.in_filters, spec.in_size, spec.in_size)


def describe_layer(key: tuple) -> str:
    """A readable name of a table key: ``mbconv i16 o24 k3 s2 e6 se0.25 relu @112``."""
    kind, cin, cout, k, s, e, se, res, size, act, se_act = key
    if kind == "classifier":
        return f"classifier {cin}->{cout} @{size}"
    text = f"{kind} i{cin} o{cout} k{k} s{s} e{e}" + (f" se{se:g}" if se else "") + (" +res" if res else "")
    acts = act + (f" se_{se_act}" if se_act and se_act != act else "")
    return f"{text}" + (f" {acts}" if acts else "") + f" @{size}"


def _key_to_dict(key: tuple) -> dict:
    return dict(zip(_KEY_FIELDS, key))


def _key_from_dict(data: dict, where: str) -> tuple:
    missing = [f for f in _KEY_FIELDS if f not in data]
    if missing:
        raise ValueError(f"{where}: entry lacks {', '.join(missing)}; the table is damaged, rebuild it with "
                         "`nas profile --out ...`")
    return (str(data["kind"]), int(data["in"]), int(data["out"]), int(data["kernel"]), int(data["stride"]),
            int(data["expand"]), float(data["se"]), bool(data["residual"]), int(data["size"]), str(data["act"]),
            str(data["se_act"]))


@dataclass(frozen=True)
class TableModel:
    """The models a table is for: a search space at a target's resolution, width, depth and classes."""

    space: str
    resolution: int
    width: float
    depth: float
    num_classes: int

    @classmethod
    def of(cls, space: str, target: TargetModel) -> "TableModel":
        return cls(space, target.resolution, float(target.width), float(target.depth), target.num_classes)

    def target(self) -> TargetModel:
        return TargetModel(resolution=self.resolution, num_classes=self.num_classes, width=self.width,
                           depth=self.depth)

    def mismatch(self, target: TargetModel) -> list[str]:
        """``field: table X, target Y`` for every target setting the table was not measured for."""
        out = []
        for name in ("resolution", "num_classes", "width", "depth"):
            mine, theirs = getattr(self, name), getattr(target, name)
            if abs(float(mine) - float(theirs)) > 1e-9:
                out.append(f"{name}: table {mine:g}, target {theirs:g}")
        return out


@dataclass
class LatencyTable:
    """Per-layer latencies on one target, and the calibration that turns their sum into a model's latency."""

    settings: MeasureSettings
    model: TableModel
    target: dict
    entries: dict[tuple, Measurement] = field(default_factory=dict)
    scale: float = 1.0
    offset_ms: float = 0.0
    calibration: dict = field(default_factory=dict)

    # -- prediction ---------------------------------------------------------------------------------
    def missing(self, layers: list[LayerSpec]) -> list[LayerSpec]:
        """The layers of ``layers`` without an entry (distinct keys, in order)."""
        seen, out = set(), []
        for spec in layers:
            key = spec.key()
            if key not in self.entries and key not in seen:
                seen.add(key)
                out.append(spec)
        return out

    def layer_sum(self, layers: list[LayerSpec]) -> float:
        """Sum of the entries of ``layers`` (ms); a missing layer raises :class:`MissingLayerError`."""
        total = 0.0
        for spec in layers:
            entry = self.entries.get(spec.key())
            if entry is None:
                raise MissingLayerError(
                    f"latency table has no entry for layer {describe_layer(spec.key())} (resolution "
                    f"{self.model.resolution}, width {self.model.width:g}); rebuild the table for the whole space "
                    "(`nas profile` without --samples), or measure what is missing: `nas profile --validate TABLE "
                    "--measure-missing` (in code: LatencyCost(..., measure_missing=True))")
            total += entry.value(self.settings.statistic)
        return total

    def calibrated(self, raw_ms: float) -> float:
        return self.scale * raw_ms + self.offset_ms

    def predict(self, genotype: Genotype) -> float:
        """Predicted latency (ms) of ``genotype``'s model on this table's target."""
        return self.calibrated(self.layer_sum(model_layers(genotype, self.model.target())))

    def check_target(self, target: TargetModel, where: str = "latency table") -> None:
        """Raise ValueError when ``target`` is not the model this table was measured for."""
        diff = self.model.mismatch(target)
        if diff:
            t = target
            raise ValueError(
                f"{where} was measured for a different target model ({'; '.join(diff)}); make a table for this "
                f"target: nas profile --target {self.settings.backend} --resolution {t.resolution} --width "
                f"{t.width:g} --depth {t.depth:g} --num-classes {t.num_classes} --out LUT")

    def noise(self) -> dict:
        """How noisy the entries are (``nas.cost.latency.measure.noise_summary``), with the load recorded at build."""
        from .measure import noise_summary

        recorded = self.target.get("noise") or {}
        return {**noise_summary(list(self.entries.values()), self.settings.clock),
                **{k: recorded[k] for k in ("load", "cpus") if k in recorded}}

    # -- files --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        entries = [{**_key_to_dict(k), **m.to_dict(self.settings.clock)}
                   for k, m in sorted(self.entries.items(), key=_sort_key)]
        return {"format": FORMAT, "version": VERSION, "target": self.target, "settings": asdict(self.settings),
                "model": asdict(self.model),
                "calibration": {"scale": self.scale, "offset_ms": self.offset_ms, **self.calibration},
                "entries": entries}

    @classmethod
    def from_dict(cls, data: dict, where: str = "latency table") -> "LatencyTable":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{where} is not an effnas latency table (no format: {FORMAT}); make one with "
                             "`nas profile --target cpu --out lut.json`")
        if data.get("version") != VERSION:
            raise ValueError(f"{where} has table version {data.get('version')!r}, this effnas reads version "
                             f"{VERSION}; rebuild it with `nas profile ... --out`")
        try:
            settings = MeasureSettings(**_known(MeasureSettings, data["settings"]))
            model = TableModel(**_known(TableModel, data["model"]))
            cal = dict(data.get("calibration") or {})
            entries = {_key_from_dict(e, where): Measurement.from_dict(e) for e in data["entries"]}
        except (KeyError, TypeError) as err:
            raise ValueError(f"{where} is damaged ({type(err).__name__}: {err}); rebuild it with `nas profile`") \
                from None
        scale, offset = float(cal.pop("scale", 1.0)), float(cal.pop("offset_ms", 0.0))
        return cls(settings=settings, model=model, target=dict(data.get("target") or {}), entries=entries,
                   scale=scale, offset_ms=offset, calibration=cal)

    def save(self, path: str | Path) -> Path:
        """Write the table (JSON, or YAML by suffix) atomically: a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        text = yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False) if path.suffix in (".yaml", ".yml") else \
            json.dumps(data, indent=1) + "\n"
        return atomic_write(path, text)

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"latency table {str(path)!r} does not exist; make it with "
                                    f"`nas profile --target cpu --out {path}`")
        text = path.read_text()
        try:
            data = yaml.load(text, Loader=_YAML_LOADER) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ValueError(f"latency table {str(path)!r} is not valid {path.suffix[1:] or 'JSON'} ({err}); "
                             "rebuild it with `nas profile`") from None
        return cls.from_dict(data, where=f"latency table {str(path)!r}")


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}")
    return dict(data)


_KIND_ORDER = {"stem": 0, **{name: 1 for name in OP_NAMES}, "head": 2, "classifier": 3}


def _sort_key(item: tuple) -> tuple:
    key = item[0]
    return (_KIND_ORDER.get(key[0], 4), -key[8], key)
