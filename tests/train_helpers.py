"""A tiny ``nas train`` job for tests: b0 at width 0.25, 32x32, a few hundred built-in images."""

from __future__ import annotations

import dataclasses

from nas.data import DataConfig
from nas.train.config import TrainConfig
from nas.train.loop import TrainJob
from search_spaces import resolve_genotype

TINY_TRAIN = TrainConfig(epochs=2, batch_size=32, lr=8.192, lr_batch=4096, warmup_epochs=0.25, decay_epochs=1.0,
                         bn_decay=0.9, ema_decay=0.9, crop="pad", augment="randaugment", randaugment_magnitude=5,
                         eval_crop=1.0, zero_init=True, eval_batch_size=256)
TINY_DATA = DataConfig(train_limit=256, holdout=64)


def tiny_job(run_dir, stem_stride: int = 1, padding: str = "symmetric", data: DataConfig = TINY_DATA,
             **train) -> TrainJob:
    return TrainJob(genotype=resolve_genotype("b0").to_string(), width=0.25, depth=1.0, resolution=32, dropout=0.2,
                    stem_stride=stem_stride, padding=padding, train=dataclasses.replace(TINY_TRAIN, **train),
                    data=data, run_dir=str(run_dir), threads=1)
