"""One proxy trial outside a search (``nas train-proxy``): the sections of an experiment a trial uses.

Any search experiment file works: its other top-level sections are ignored (``sections_of``); a
``--set`` on a section a trial does not use is a mistake named in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..config import ConfigError
from ..cost.objective import ObjectiveConfig
from ..cost.target import TargetModel
from ..data import DataConfig
from .proxy import ProxyConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialConfig:
    """The sections of an experiment YAML that one trial uses (other top-level sections are ignored)."""

    KIND: ClassVar[str] = "trial"
    PATHS: ClassVar[tuple[str, ...]] = ("data.path", "data.cache_dir", "objective.latency_table")

    data: DataConfig = field(default_factory=DataConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    target: TargetModel = field(default_factory=TargetModel)

    @classmethod
    def sections_of(cls, raw: dict) -> dict:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if len(known) < len(raw):
            log.debug("ignoring sections not used by one trial: %s", ", ".join(str(k) for k in raw if k not in known))
        return known

    def check(self) -> None:
        from .load import check_data_path

        check_data_path(self.data)


def load_trial_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """Read ``path`` (or the defaults), apply ``--set`` overrides, keep the trial sections, type-check."""
    from .load import load

    known = tuple(TrialConfig.__dataclass_fields__)
    for item in overrides:
        section = item.split("=", 1)[0].strip().split(".", 1)[0]
        if section not in known:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; a trial uses "
                              f"{', '.join(known)} (e.g. --set proxy.epochs=3)")
    return load(TrialConfig, path, overrides)


__all__ = ["TrialConfig", "load_trial_config"]
