"""Each augmentation op of nas.train.augment against hand-computed values (and PIL where it has the op)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from nas.train import augment as A


def img(values, h=None, w=None) -> torch.Tensor:
    """A (1, 3, H, W) uint8 image with the same plane in every channel."""
    plane = torch.tensor(values, dtype=torch.uint8)
    if plane.ndim == 1:
        plane = plane.view(h or 1, w or len(values))
    return plane.expand(3, *plane.shape).unsqueeze(0).clone()


def rgb(r, g, b) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.uint8).view(1, 3, 1, 1)


def test_blend_interpolates_truncates_and_clips():
    a, b = img([100, 0, 200]), img([200, 3, 250])
    assert A.blend(a, b, 0.0).tolist() == a.tolist()
    assert A.blend(a, b, 1.0).tolist() == b.tolist()
    assert A.blend(a, b, 0.5)[0, 0, 0].tolist() == [150, 1, 225]  # 1.5 truncates to 1
    assert A.blend(a, b, 2.0)[0, 0, 0].tolist() == [255, 6, 255]  # 300 and 300 clip to 255


def test_grayscale_is_pil_luma():
    assert A.grayscale(rgb(255, 0, 0)).item() == 76
    assert A.grayscale(rgb(0, 255, 0)).item() == 150
    assert A.grayscale(rgb(0, 0, 255)).item() == 29
    assert A.grayscale(rgb(255, 255, 255)).item() == 255


def test_color_brightness_contrast():
    red = rgb(200, 0, 0)
    assert A.color(red, 0.0)[0, :, 0, 0].tolist() == [60, 60, 60]  # (19595*200 + 32768) >> 16 = 60
    assert A.color(red, 1.0).tolist() == red.tolist()
    assert A.brightness(img([100, 200]), 0.5)[0, 0, 0].tolist() == [50, 100]
    assert A.brightness(img([100, 200]), 1.5)[0, 0, 0].tolist() == [150, 255]
    half = img([0, 100])  # grey mean 50
    assert A.contrast(half, 0.5)[0, 0, 0].tolist() == [25, 75]
    assert A.contrast(half, 0.0)[0, 0, 0].tolist() == [50, 50]


def test_sharpness_blends_with_the_smoothed_interior():
    x = img([0, 0, 0, 0, 130, 0, 0, 0, 0], 3, 3)
    smooth = A.sharpness(x, 0.0)  # the degenerate image: centre (5 * 130) / 13 = 50, border unchanged
    assert smooth[0, 0].tolist() == [[0, 0, 0], [0, 50, 0], [0, 0, 0]]
    assert A.sharpness(x, 2.0)[0, 0, 1, 1].item() == 210  # 50 + 2 * (130 - 50)
    assert A.sharpness(x, 1.0).tolist() == x.tolist()


def test_posterize_solarize_invert():
    x = img([183, 0, 255])
    assert A.posterize(x, 4)[0, 0, 0].tolist() == [176, 0, 240]
    assert A.posterize(x, 0)[0, 0, 0].tolist() == [0, 0, 0]
    assert A.posterize(x, 8).tolist() == x.tolist()
    assert A.solarize(img([100, 128, 200]), 128)[0, 0, 0].tolist() == [100, 127, 55]
    assert A.solarize(img([100, 128, 200]), 256).tolist() == img([100, 128, 200]).tolist()
    assert A.solarize_add(img([100, 127, 128, 250]), 50)[0, 0, 0].tolist() == [150, 177, 128, 250]
    assert A.solarize_add(img([120]), 200)[0, 0, 0].tolist() == [255]
    assert A.invert(img([0, 55, 255]))[0, 0, 0].tolist() == [255, 200, 0]


def test_autocontrast_stretches_each_channel():
    x = torch.stack([torch.tensor([[50, 100, 150]]), torch.tensor([[7, 7, 7]]), torch.tensor([[0, 10, 20]])]) \
        .to(torch.uint8).unsqueeze(0)
    out = A.autocontrast(x)[0]
    assert out[0].tolist() == [[0, 127, 255]]
    assert out[1].tolist() == [[7, 7, 7]]  # constant channel unchanged
    assert out[2].tolist() == [[0, 127, 255]]


def test_equalize_lookup_table_by_hand():
    # 255 pixels of 10, 255 of 20, one of 30: step = (511 - 1) // 255 = 2; lut[v] = (cumsum[v-1] + 1) // 2
    x = img([10] * 255 + [20] * 255 + [30])
    out = A.equalize(x)[0, 0, 0]
    assert sorted(set(out.tolist())) == [0, 128, 255]
    assert out[0].item() == 0 and out[300].item() == 128 and out[-1].item() == 255
    flat = img([10, 20, 30])  # step = (3 - 1) // 255 = 0: unchanged
    assert A.equalize(flat).tolist() == flat.tolist()


def test_photometric_ops_match_pil():
    pil = pytest.importorskip("PIL.Image")
    ops = pytest.importorskip("PIL.ImageOps")
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    arr[:, :, 1] = np.clip(arr[:, :, 1] // 2 + 40, 0, 255)  # a channel that does not span 0..255
    x = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()
    image = pil.fromarray(arr)

    def ours(t):
        return t[0].permute(1, 2, 0).numpy()

    assert (ours(A.equalize(x)) == np.asarray(ops.equalize(image))).all()
    assert (ours(A.autocontrast(x)) == np.asarray(ops.autocontrast(image))).all()
    assert (ours(A.posterize(x, 3)) == np.asarray(ops.posterize(image, 3))).all()
    assert (ours(A.solarize(x, 100)) == np.asarray(ops.solarize(image, 100))).all()
    assert (ours(A.grayscale(x))[:, :, 0] == np.asarray(image.convert("L"))).all()


def test_cutout_greys_one_clipped_square():
    x = torch.zeros(8, 3, 10, 10, dtype=torch.uint8)
    out = A.cutout(x, 2, torch.Generator().manual_seed(0))
    for image in out:
        rows, cols = (image[0] == 128).nonzero(as_tuple=True)
        assert 1 <= len(rows) <= 16 and (image[:, rows, cols] == 128).all()
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    assert A.cutout(x, 0, torch.Generator().manual_seed(0)).tolist() == x.tolist()


def test_rotate_by_right_angles():
    x = torch.arange(3 * 25, dtype=torch.uint8).view(1, 3, 5, 5)
    assert A.rotate(x, 0.0).tolist() == x.tolist()
    assert A.rotate(x, 90.0).tolist() == torch.rot90(x, 1, dims=(2, 3)).tolist()  # counter-clockwise
    assert A.rotate(x, -90.0).tolist() == torch.rot90(x, -1, dims=(2, 3)).tolist()
    assert A.rotate(x, 180.0).tolist() == x.flip(2).flip(3).tolist()
    ring = A.rotate(torch.zeros(1, 3, 5, 5, dtype=torch.uint8), 45.0)[0, 0]  # corners map outside: grey
    assert ring[0, 0].item() == 128 and ring[2, 2].item() == 0


def test_shear_and_translate_by_hand():
    x = img(list(range(1, 10)), 3, 3)
    sheared = A.shear_x(x, 1.0)[0, 0]  # source column = column + row
    assert sheared.tolist() == [[1, 2, 3], [5, 6, 128], [9, 128, 128]]
    assert A.shear_y(x, 1.0)[0, 0].tolist() == [[1, 5, 9], [4, 8, 128], [7, 128, 128]]
    assert A.translate_x(x, 1.0)[0, 0].tolist() == [[2, 3, 128], [5, 6, 128], [8, 9, 128]]
    assert A.translate_x(x, -1.0)[0, 0].tolist() == [[128, 1, 2], [128, 4, 5], [128, 7, 8]]
    assert A.translate_y(x, 1.0)[0, 0].tolist() == [[4, 5, 6], [7, 8, 9], [128, 128, 128]]
    both = torch.cat([x, x])
    assert A.translate_x(both, torch.tensor([1.0, -1.0]))[1, 0].tolist() == [[128, 1, 2], [128, 4, 5], [128, 7, 8]]


def test_level_to_arg_is_the_reference_table():
    arg = lambda name, level, size=224: A.level_to_arg(name, level, size, 100, 40)  # noqa: E731
    assert arg("Posterize", 6) == 2 and arg("Posterize", 10) == 4
    assert arg("Solarize", 3) == 76 and arg("SolarizeAdd", 7) == 77
    assert arg("Color", 9) == pytest.approx(1.72) and arg("Contrast", 0) == pytest.approx(0.1)
    assert arg("Rotate", 10) == pytest.approx(30.0) and arg("ShearX", 5) == pytest.approx(0.15)
    assert arg("TranslateX", 10) == pytest.approx(100.0)
    assert arg("TranslateX", 10, 32) == pytest.approx(100 * 32 / 224)  # scaled to the image
    assert arg("Cutout", 10) == 40 and arg("Cutout", 10, 32) == 5  # int(40 * 32 / 224)
    assert arg("Invert", 7) is None
    with pytest.raises(ValueError, match="unknown augmentation op"):
        arg("Blur", 3)


def test_policies_batched():
    x = torch.randint(0, 256, (6, 3, 8, 8), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    g = torch.Generator().manual_seed(1)
    assert A.randaugment(x, 1, 10, g, ops=("Invert",)).tolist() == (255 - x).tolist()
    assert A.randaugment(x, 2, 10, g, ops=("Invert",)).tolist() == x.tolist()
    assert A.autoaugment(x, g, policy=((("Invert", 1.0, 0),),)).tolist() == (255 - x).tolist()
    assert A.autoaugment(x, g, policy=((("Invert", 0.0, 0),),)).tolist() == x.tolist()
    # a batched op equals the op applied image by image
    assert A.equalize(x).tolist() == torch.cat([A.equalize(x[i:i + 1]) for i in range(6)]).tolist()
    for out in (A.autoaugment(x, g), A.randaugment(x, 2, 10, g)):
        assert out.shape == x.shape and out.dtype == torch.uint8
    assert len(A.POLICY_V0) == 25 and len(A.RANDAUGMENT_OPS) == 16


def test_crops_and_flip():
    x = torch.arange(3 * 64, dtype=torch.uint8).view(1, 3, 8, 8)
    whole = torch.tensor([[0.0, 0.0, 8.0, 8.0]])
    assert A.crop_resize(x, whole, 8).tolist() == x.tolist()
    quadrant = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    assert A.crop_resize(x, quadrant, 4).tolist() == x[:, :, :4, :4].tolist()
    assert A.crop_resize(x, whole, 8, torch.tensor([True])).tolist() == x.flip(3).tolist()
    assert A.center_boxes(1, 8, 8, 0.5, x.device).tolist() == [[2.0, 2.0, 4.0, 4.0]]
    assert A.hflip(torch.cat([x, x]), torch.tensor([True, False])).tolist() == torch.cat([x.flip(3), x]).tolist()


def test_inception_boxes_respect_area_and_aspect():
    boxes = A.inception_boxes(500, 32, 48, torch.Generator().manual_seed(0), torch.device("cpu"))
    x0, y0, w, h = boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + w <= 48).all() and (y0 + h <= 32).all()
    area = w * h / (32 * 48)
    assert area.min() >= 0.06 and area.max() <= 1.0  # 0.08..1 up to rounding to whole pixels
    ratio = w / h
    inner = (w < 48) & (h < 32) & (w > 4) & (h > 4)
    assert (ratio[inner] > 0.6).all() and (ratio[inner] < 1.6).all()
    full = A.inception_boxes(3, 10, 10, None, torch.device("cpu"), area=(1.0, 1.0), ratio=(1.0, 1.0))
    assert full.tolist() == [[0.0, 0.0, 10.0, 10.0]] * 3


def test_pad_crop_is_a_window_of_the_padded_image():
    x = torch.randint(1, 256, (10, 3, 6, 6), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    out = A.pad_crop(x, 2, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(10):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(padded[i, :, dy:dy + 6, dx:dx + 6], out[i])]
        assert found, f"image {i} is no window of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 1
    assert A.pad_crop(x, 0, None).tolist() == x.tolist()
