"""Image augmentation on batched tensors: the crops, AutoAugment and RandAugment of the EfficientNet recipe.

torchvision does not install beside this project's CPU torch, so the ops are
written here once, on ``uint8`` tensors of shape (B, 3, H, W), batched: every
op takes per-image arguments (a tensor of B values) and a whole group of images
is transformed in one call.  Semantics follow the reference
(tensorflow/tpu ``models/official/efficientnet/autoaugment.py``, itself "the
equivalent of PIL"), with integer results as there:

* ``blend(a, b, f) = uint8(clip(a + f * (b - a), 0, 255))`` (truncation);
  Color, Contrast, Brightness and Sharpness blend the image with a degenerate
  version of it (grey, its mean grey, black, smoothed);
* grey is PIL's ITU-R 601-2 luma, ``(19595 R + 38470 G + 7471 B + 2**15) >> 16``;
  Contrast's degenerate image is the rounded mean grey (PIL; the TF port
  divides the histogram's sum by 256 instead, a known slip, not copied);
* geometric ops (Rotate, ShearX/Y, TranslateX/Y) sample the nearest pixel,
  empty pixels become grey 128 (TF's ``wrap``/``unwrap``);
* Posterize keeps the top ``bits`` bits, Solarize inverts pixels >= the
  threshold, SolarizeAdd adds to pixels < 128, AutoContrast stretches each
  channel's min..max to 0..255, Equalize is PIL's histogram equalisation
  (per channel, the TF port's lookup table), Invert is 255 - x, Cutout greys a
  square of side 2 * pad around a random centre.

Magnitudes map to arguments by the reference's ``level_to_arg`` (level 0..10);
Rotate, Shear and Translate get a random sign.  Pixel constants of the reference
(translate 100/250 pixels, cutout 40/100) are for 224x224 images and are scaled
by ``size / 224`` here so a small image gets the same fraction.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

MAX_LEVEL = 10.0
FILL = 128
REFERENCE_SIZE = 224

#: AutoAugment policy v0 (Cubuk et al. 2019, arXiv:1805.09501), as in the reference: 25 sub-policies of two
#: (op, probability, level) each; one sub-policy is drawn per image.
POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)), (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)), (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)), (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)), (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)), (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)), (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)), (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)), (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)), (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)), (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)), (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)), (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
#: RandAugment's ops (Cubuk et al. 2020, arXiv:1909.13719), the reference's list and order.
RANDAUGMENT_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
                   "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")


def _col(v: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """A per-image argument as a (B, 1, 1, 1) float tensor."""
    v = torch.as_tensor(v, dtype=torch.float32, device=x.device)
    return v.reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 255] and truncate, as ``tf.cast(tf.clip_by_value(x, 0, 255), tf.uint8)``."""
    return x.clamp(0, 255).floor().to(torch.uint8)


# -- colour ops -----------------------------------------------------------------------------------
def blend(a: torch.Tensor, b: torch.Tensor, factor) -> torch.Tensor:
    """``uint8(clip(a + factor * (b - a)))``: 0 gives ``a``, 1 gives ``b``, > 1 extrapolates."""
    af = a.float()
    return _to_u8(af + _col(factor, a) * (b.float() - af))


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """PIL's luma ``L = (19595 R + 38470 G + 7471 B + 32768) >> 16`` as a (B, 1, H, W) uint8 tensor."""
    r, g, b = x.long().unbind(1)
    return ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16).unsqueeze(1).to(torch.uint8)


def color(x: torch.Tensor, factor) -> torch.Tensor:
    return blend(grayscale(x).expand_as(x), x, factor)


def contrast(x: torch.Tensor, factor) -> torch.Tensor:
    mean = grayscale(x).float().mean((1, 2, 3), keepdim=True)
    degenerate = torch.floor(mean + 0.5).expand_as(x)
    return blend(degenerate, x, factor)


def brightness(x: torch.Tensor, factor) -> torch.Tensor:
    return blend(torch.zeros_like(x), x, factor)


def sharpness(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend with PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13) of the interior; the border stays."""
    kernel = torch.ones(3, 1, 3, 3, device=x.device)
    kernel[:, :, 1, 1] = 5.0
    smooth = F.conv2d(x.float(), kernel / 13.0, groups=3)
    degenerate = x.clone()
    degenerate[:, :, 1:-1, 1:-1] = _to_u8(smooth)
    return blend(degenerate, x, factor)


def posterize(x: torch.Tensor, bits) -> torch.Tensor:
    """Keep the top ``bits`` (0..8) bits of every channel value."""
    shift = (8 - _col(bits, x)).long()
    xi = x.long()
    return ((xi >> shift) << shift).to(torch.uint8)


def solarize(x: torch.Tensor, threshold) -> torch.Tensor:
    """Invert every value at or above ``threshold`` (0..256)."""
    return torch.where(x.float() < _col(threshold, x), x, 255 - x)


def solarize_add(x: torch.Tensor, addition, threshold: float = 128) -> torch.Tensor:
    """Add ``addition`` (clipped to 0..255) to values below ``threshold``."""
    added = (x.long() + _col(addition, x).long()).clamp(0, 255).to(torch.uint8)
    return torch.where(x < threshold, added, x)


def invert(x: torch.Tensor, _=None) -> torch.Tensor:
    return 255 - x


def autocontrast(x: torch.Tensor, _=None) -> torch.Tensor:
    """Stretch each channel's min..max to 0..255 (channels with min == max are unchanged)."""
    lo = x.amin((2, 3), keepdim=True).float()
    hi = x.amax((2, 3), keepdim=True).float()
    scale = 255.0 / (hi - lo).clamp_min(1.0)
    out = _to_u8(x.float() * scale - lo * scale)
    return torch.where(hi > lo, out, x)


def equalize(x: torch.Tensor, _=None) -> torch.Tensor:
    """PIL's histogram equalisation of each channel, batched (the reference's lookup table)."""
    b, c, h, w = x.shape
    flat = x.reshape(b * c, h * w).long()
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, flat, torch.ones_like(flat))
    bins = torch.arange(256, device=x.device).expand_as(hist)
    last = torch.where(hist > 0, bins, -1).amax(1, keepdim=True)
    step = (h * w - hist.gather(1, last)) // 255
    safe = step.clamp_min(1)
    lut = (hist.cumsum(1) + safe // 2) // safe
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut[:, :-1]], 1).clamp(0, 255)
    out = torch.where(step > 0, lut.gather(1, flat), flat)
    return out.reshape(b, c, h, w).to(torch.uint8)


def cutout(x: torch.Tensor, pad, generator: torch.Generator | None = None) -> torch.Tensor:
    """Grey (128) a square of side 2 * ``pad`` centred on a random pixel, clipped at the border."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), device=x.device, generator=generator)
    cx = torch.randint(0, w, (b, 1, 1), device=x.device, generator=generator)
    p = torch.as_tensor(pad, device=x.device).long().reshape(-1, 1, 1).expand(b, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= cy - p) & (rows < cy + p) & (cols >= cx - p) & (cols < cx + p)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, FILL), x)


# -- geometric ops --------------------------------------------------------------------------------
def affine_nearest(x: torch.Tensor, matrix: torch.Tensor, fill: int = FILL) -> torch.Tensor:
    """Output pixel (col, row) takes the input pixel nearest to ``matrix @ (col, row, 1)`` (pixel units).

    ``matrix`` is (B, 2, 3); sources outside the image give ``fill`` (TF's projective ``transform``).
    """
    b, c, h, w = x.shape
    rows, cols = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32),
                                torch.arange(w, device=x.device, dtype=torch.float32), indexing="ij")
    grid = torch.stack([cols, rows, torch.ones_like(rows)], 0).reshape(3, h * w)
    src = matrix.float() @ grid  # (B, 2, HW)
    sx, sy = torch.round(src[:, 0]).long(), torch.round(src[:, 1]).long()
    valid = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    index = (sy.clamp(0, h - 1) * w + sx.clamp(0, w - 1)).unsqueeze(1).expand(b, c, h * w)
    out = x.reshape(b, c, h * w).gather(2, index)
    out = torch.where(valid.unsqueeze(1), out, torch.full_like(out, fill))
    return out.reshape(b, c, h, w)


def _matrix(x: torch.Tensor, a, b_, c, d, e, f) -> torch.Tensor:
    n = x.shape[0]
    vals = [torch.as_tensor(v, dtype=torch.float32, device=x.device).reshape(-1).expand(n) for v in (a, b_, c, d, e, f)]
    return torch.stack(vals, 1).reshape(n, 2, 3)


def rotate(x: torch.Tensor, degrees) -> torch.Tensor:
    """Rotate counter-clockwise by ``degrees`` about the image centre (TF ``contrib.image.rotate``)."""
    h, w = x.shape[-2:]
    t = torch.as_tensor(degrees, dtype=torch.float32, device=x.device) * (math.pi / 180.0)
    cos, sin = torch.cos(t), torch.sin(t)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # source = R(t) (p - centre) + centre, in image coordinates (y down): a visually counter-clockwise turn.
    return affine_nearest(x, _matrix(x, cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy))


def shear_x(x: torch.Tensor, level) -> torch.Tensor:
    """Source column = column + level * row (TF transform [1, level, 0, 0, 1, 0])."""
    return affine_nearest(x, _matrix(x, 1.0, level, 0.0, 0.0, 1.0, 0.0))


def shear_y(x: torch.Tensor, level) -> torch.Tensor:
    """Source row = level * column + row (TF transform [1, 0, 0, level, 1, 0])."""
    return affine_nearest(x, _matrix(x, 1.0, 0.0, 0.0, level, 1.0, 0.0))


def translate_x(x: torch.Tensor, pixels) -> torch.Tensor:
    """Content moves ``pixels`` to the left (TF ``translate(image, [-pixels, 0])``)."""
    return affine_nearest(x, _matrix(x, 1.0, 0.0, pixels, 0.0, 1.0, 0.0))


def translate_y(x: torch.Tensor, pixels) -> torch.Tensor:
    """Content moves ``pixels`` up."""
    return affine_nearest(x, _matrix(x, 1.0, 0.0, 0.0, 0.0, 1.0, pixels))


# -- levels and policies --------------------------------------------------------------------------
Op = Callable[..., torch.Tensor]
OPS: dict[str, Op] = {
    "AutoContrast": autocontrast, "Equalize": equalize, "Invert": invert, "Rotate": rotate,
    "Posterize": posterize, "Solarize": solarize, "SolarizeAdd": solarize_add, "Color": color,
    "Contrast": contrast, "Brightness": brightness, "Sharpness": sharpness, "ShearX": shear_x, "ShearY": shear_y,
    "TranslateX": translate_x, "TranslateY": translate_y, "Cutout": cutout,
}
_SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"}


def level_to_arg(name: str, level: float, size: int, translate_const: float, cutout_const: float) -> float | None:
    """The reference's ``level_to_arg`` (before the random sign): the op's argument at ``level`` (0..10)."""
    frac = level / MAX_LEVEL
    scale = size / REFERENCE_SIZE
    if name in ("AutoContrast", "Equalize", "Invert"):
        return None
    if name == "Rotate":
        return frac * 30.0
    if name == "Posterize":
        return float(int(frac * 4))
    if name == "Solarize":
        return float(int(frac * 256))
    if name == "SolarizeAdd":
        return float(int(frac * 110))
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return frac * 1.8 + 0.1
    if name in ("ShearX", "ShearY"):
        return frac * 0.3
    if name in ("TranslateX", "TranslateY"):
        return frac * translate_const * scale
    if name == "Cutout":
        return float(int(frac * cutout_const * scale))
    raise ValueError(f"unknown augmentation op {name!r}; known: {', '.join(OPS)}")


def apply_op(x: torch.Tensor, name: str, level: float, generator: torch.Generator | None,
             translate_const: float, cutout_const: float) -> torch.Tensor:
    """``name`` at ``level`` on every image of ``x``, with a random sign per image where the op has one."""
    arg = level_to_arg(name, level, x.shape[-1], translate_const, cutout_const)
    if arg is not None and name in _SIGNED:
        sign = torch.randint(0, 2, (x.shape[0],), device=x.device, generator=generator) * 2 - 1
        arg = sign.float() * arg
    if name == "Cutout":
        return cutout(x, arg, generator)
    return OPS[name](x, arg)


def _where(x: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    idx = mask.nonzero().flatten()
    if len(idx):
        x = x.clone()
        x[idx] = fn(x[idx])
    return x


def autoaugment(x: torch.Tensor, generator: torch.Generator | None = None,
                policy=POLICY_V0) -> torch.Tensor:
    """AutoAugment: each image draws one sub-policy and applies each of its ops with the op's probability."""
    b = x.shape[0]
    choice = torch.randint(0, len(policy), (b,), device=x.device, generator=generator)
    for position in range(max(len(sub) for sub in policy)):
        apply = torch.rand(b, device=x.device, generator=generator)
        for i, sub in enumerate(policy):
            if position < len(sub):
                name, prob, level = sub[position]
                mask = (choice == i) & (apply < prob)
                x = _where(x, mask, lambda part, n=name, lv=level: apply_op(part, n, lv, generator, 250, 100))
    return x


def randaugment(x: torch.Tensor, layers: int = 2, magnitude: float = 10.0,
                generator: torch.Generator | None = None, ops=RANDAUGMENT_OPS) -> torch.Tensor:
    """RandAugment: ``layers`` times, each image applies one uniformly drawn op at ``magnitude``."""
    for _ in range(layers):
        choice = torch.randint(0, len(ops), (x.shape[0],), device=x.device, generator=generator)
        for i, name in enumerate(ops):
            x = _where(x, choice == i, lambda part, n=name: apply_op(part, n, magnitude, generator, 100, 40))
    return x


# -- crops ----------------------------------------------------------------------------------------
def crop_resize(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Bilinear crop of ``boxes`` (B, 4: x0, y0, width, height in pixels) resized to ``size``; uint8 out.

    ``flip`` (B,) bool mirrors the crop horizontally in the same pass.
    """
    b, _, h, w = x.shape
    boxes = boxes.float()
    sx, sy = boxes[:, 2] / w, boxes[:, 3] / h
    cx = (boxes[:, 0] + boxes[:, 2] / 2) / w * 2 - 1
    cy = (boxes[:, 1] + boxes[:, 3] / 2) / h * 2 - 1
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)
    grid = F.affine_grid(theta, [b, 3, size, size], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def inception_boxes(b: int, h: int, w: int, generator: torch.Generator | None, device: torch.device,
                    area: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                    attempts: int = 10) -> torch.Tensor:
    """Random boxes of the Inception crop (Szegedy et al. 2015): area and aspect drawn, 10 tries, else whole.

    The reference's ``distorted_bounding_box_crop`` (area 0.08-1, aspect 3/4-4/3, 10 attempts) without its
    object-coverage constraint, which is moot without bounding boxes.
    """
    target = torch.empty(b, attempts, device=device).uniform_(*area, generator=generator) * (h * w)
    log_r = torch.empty(b, attempts, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                                             generator=generator)
    r = torch.exp(log_r)
    cw = torch.round(torch.sqrt(target * r))
    ch = torch.round(torch.sqrt(target / r))
    ok = (cw >= 1) & (ch >= 1) & (cw <= w) & (ch <= h)
    first = torch.where(ok, torch.arange(attempts, device=device).flip(0) + 1, 0).argmax(1, keepdim=True)
    found = ok.gather(1, first).squeeze(1)
    cw = torch.where(found, cw.gather(1, first).squeeze(1), torch.full((b,), float(w), device=device))
    ch = torch.where(found, ch.gather(1, first).squeeze(1), torch.full((b,), float(h), device=device))
    x0 = torch.floor(torch.rand(b, device=device, generator=generator) * (w - cw + 1))
    y0 = torch.floor(torch.rand(b, device=device, generator=generator) * (h - ch + 1))
    return torch.stack([x0, y0, cw, ch], 1)


def center_boxes(b: int, h: int, w: int, fraction: float, device: torch.device) -> torch.Tensor:
    """The central ``fraction`` of each side (the reference's evaluation crop, 224 of 256)."""
    cw, ch = w * fraction, h * fraction
    box = torch.tensor([(w - cw) / 2, (h - ch) / 2, cw, ch], device=device)
    return box.expand(b, 4)


def pad_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Zero-pad ``padding`` pixels on every side and crop back to the size at a random offset."""
    b, _, h, w = x.shape
    if padding == 0:
        return x
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device, generator=generator)
    rows = (torch.arange(h, device=x.device) + dy).view(b, 1, h, 1)
    cols = (torch.arange(w, device=x.device) + dx).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, chan, rows, cols]


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images where ``mask`` (B,) is true."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)
