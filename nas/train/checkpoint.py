"""What a training checkpoint holds, and the artefacts of a finished run.

A checkpoint is a folder (``<run_dir>/epoch_NNNN``), written every epoch:

* ``state.pt`` (rank 0): ``model`` (the plain module's state dict, no DDP prefix), ``ema`` (or None),
  ``optimizer``, ``schedule`` (the global step), ``epoch``, ``history`` (one metrics dict per epoch);
* ``rng_rank<R>.pt`` (every rank): torch's global CPU (and CUDA) generator, which dropout and
  stochastic depth draw from, and the worker's augmentation/shuffle generator.

A finished run adds ``weights.pt`` (the state dict to use: the EMA weights when EMA is on, as the
reference evaluates them), ``model.yaml`` (genotype and scale, so ``nas export RUN_DIR`` can rebuild
the module) and ``result.json`` (final test accuracy).  Everything is read with
``torch.load(weights_only=True)``: tensors and plain containers only, no pickled code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from efficientnet import EfficientNet, ModelSpec, build_model
from search_spaces import Genotype

from ..experiment.train import CHECKPOINT_STATE, EPOCH_DIR
from ..export import apply_state, load_weights

STATE = CHECKPOINT_STATE
WEIGHTS = "weights.pt"
MODEL = "model.yaml"
RESULT = "result.json"
METRICS = "metrics.jsonl"
_EPOCH_DIR = EPOCH_DIR


def epoch_dir_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}"


def rng_file(rank: int) -> str:
    return f"rng_rank{rank}.pt"


def checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders of ``run_dir`` (those with a ``state.pt``), oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if (m := _EPOCH_DIR.match(p.name)) and (p / STATE).is_file()]
    return [p for _, p in sorted(found)]


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def load_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def load(path: str | Path) -> Any:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


# -- artefacts of a finished run ------------------------------------------------------------------
def spec_record(spec: ModelSpec, padding: str, bn_eps: float) -> dict[str, Any]:
    return {"genotype": spec.genotype.to_string(), "width": spec.width, "depth": spec.depth,
            "resolution": spec.resolution, "dropout": spec.dropout, "num_classes": spec.num_classes,
            "stem_stride": spec.stem_stride, "padding": padding, "bn_eps": bn_eps}


def write_model_yaml(run_dir: Path, record: dict[str, Any]) -> None:
    (run_dir / MODEL).write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")


def is_train_run(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / MODEL).is_file()


def load_trained(run_dir: str | Path, weights: str | Path | None = None) -> tuple[EfficientNet, ModelSpec]:
    """The trained module of a ``nas train`` run dir (``model.yaml`` + ``weights.pt``), in eval mode.

    ``weights`` may name another state dict file or a checkpoint folder (its ``state.pt``: the EMA weights
    when it has them, else the raw ones).
    """
    run_dir = Path(run_dir)
    record_file = run_dir / MODEL
    if not record_file.is_file():
        raise FileNotFoundError(f"{record_file} not found: not a `nas train` run dir (it writes {MODEL} when "
                                "training starts)")
    record = yaml.safe_load(record_file.read_text())
    try:
        spec = ModelSpec(Genotype.from_string(record["genotype"]), width=float(record["width"]),
                         depth=float(record["depth"]), resolution=int(record["resolution"]),
                         dropout=float(record["dropout"]), num_classes=int(record["num_classes"]),
                         stem_stride=int(record["stem_stride"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{record_file}: malformed model record ({err}); it is written by `nas train`") from None
    model = build_model(spec, same_padding=record.get("padding") == "same", bn_eps=float(record["bn_eps"]))
    source = Path(weights) if weights is not None else run_dir / WEIGHTS
    if source.is_dir():
        source = source / STATE
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: the run has not finished (its checkpoints are "
                                f"{', '.join(p.name for p in checkpoints(run_dir)) or 'none'}); pass one of them "
                                "with --weights RUN_DIR/epoch_NNNN")
    if source.name == STATE:  # a checkpoint folder: the EMA weights when it has them, else the raw ones
        state = load(source)
        if isinstance(state, dict) and state.get("ema"):
            state = state["ema"]["module"]
        elif isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        apply_state(model, state, str(source))
    else:
        load_weights(model, source, "--weights")
    return model.eval(), spec


def write_result(run_dir: Path, result: dict[str, Any]) -> None:
    (run_dir / RESULT).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
