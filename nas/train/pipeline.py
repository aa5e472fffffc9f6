"""The input pipeline of ``nas train``: uint8 NHWC batches on the device -> augmented, normalised float NCHW.

Training (the reference's ``preprocess_for_train``): random crop (Inception-style
area/aspect crop resized to the resolution, or the CIFAR pad-and-crop) and
horizontal flip, then AutoAugment or RandAugment on the uint8 result, then
normalisation by the training subset's per-channel mean and std (the data
layer's statistics; the reference uses ImageNet's).  Evaluation: the central
``eval_crop`` of each image resized to the resolution (the reference's 224 of
256), normalised.  Everything is batched on the training device; the random
streams come from the worker's generator.
"""

from __future__ import annotations

import torch

from . import augment as A
from ..experiment.train import TrainConfig


class Augmenter:
    def __init__(self, cfg: TrainConfig, mean, std, resolution: int, device: torch.device,
                 channels_last: bool) -> None:
        self.cfg = cfg
        self.resolution = resolution
        self.device = device
        self.channels_last = channels_last
        mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std)
        self.shift = -mean / std

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, x.float(), self.scale)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def train_batch(self, x_nhwc: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        x = x_nhwc.permute(0, 3, 1, 2).contiguous()
        b, _, h, w = x.shape
        flip = torch.rand(b, device=x.device, generator=generator) < 0.5 if cfg.flip else None
        if cfg.crop == "inception":
            x = A.crop_resize(x, A.inception_boxes(b, h, w, generator, x.device), self.resolution, flip)
        else:
            if cfg.crop == "pad":
                x = A.pad_crop(x, cfg.crop_padding, generator)
            if flip is not None:
                x = A.hflip(x, flip)
            if h != self.resolution:
                x = A.crop_resize(x, A.center_boxes(b, h, w, 1.0, x.device), self.resolution)
        if cfg.augment == "autoaugment":
            x = A.autoaugment(x, generator)
        elif cfg.augment == "randaugment":
            x = A.randaugment(x, cfg.randaugment_layers, cfg.randaugment_magnitude, generator)
        return self._normalise(x)

    def eval_batch(self, x_nhwc: torch.Tensor) -> torch.Tensor:
        x = x_nhwc.permute(0, 3, 1, 2).contiguous()
        b, _, h, w = x.shape
        if self.cfg.eval_crop < 1 or h != self.resolution:
            x = A.crop_resize(x, A.center_boxes(b, h, w, self.cfg.eval_crop, x.device), self.resolution)
        return self._normalise(x)
