"""Proxy data: the four dataset kinds, the seeded held-out split, the per-process cache, clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from nas.config import ConfigError, from_dict
from nas.data import DataConfig, load_data, split_indices


def _arrays(n_train=60, n_test=20, size=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y_train = np.arange(n_train) % classes
    y_test = np.arange(n_test) % classes
    return {"x_train": rng.integers(0, 256, (n_train, size, size, 3), dtype=np.uint8), "y_train": y_train,
            "x_test": rng.integers(0, 256, (n_test, size, size, 3), dtype=np.uint8), "y_test": y_test,
            "classes": np.asarray([f"c{i}" for i in range(classes)])}


@pytest.fixture
def npz_file(tmp_path):
    path = tmp_path / "toy.npz"
    np.savez(path, **_arrays())
    return path


# -- the split -------------------------------------------------------------------------------------------
def test_split_is_disjoint_complete_and_stratified():
    labels = np.repeat(np.arange(10), 50)
    hold, train = split_indices(labels, 0.2, None, seed=3)
    assert len(hold) == 100 and len(train) == 400
    assert not set(hold) & set(train)
    assert sorted(np.concatenate([hold, train]).tolist()) == list(range(500))
    assert np.bincount(labels[hold]).tolist() == [10] * 10


def test_split_is_deterministic_and_seeded():
    labels = np.random.default_rng(1).integers(0, 5, 300)
    a = split_indices(labels, 0.25, None, seed=7)
    b = split_indices(labels, 0.25, None, seed=7)
    c = split_indices(labels, 0.25, None, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_holdout_count_and_train_limit():
    labels = np.repeat(np.arange(4), 25)
    hold, train = split_indices(labels, 20, 40, seed=0)
    assert len(hold) == 20 and len(train) == 40
    assert np.bincount(labels[train]).tolist() == [10] * 4  # the subset keeps the class balance
    # The held-out images do not depend on how many training images are used.
    assert np.array_equal(hold, split_indices(labels, 20, None, seed=0)[0])
    assert set(train) < set(split_indices(labels, 20, None, seed=0)[1])


def test_holdout_must_leave_both_sides():
    with pytest.raises(ValueError, match=r"data.holdout=100 holds out 100 of 100"):
        split_indices(np.zeros(100, int), 100, None, 0)


# -- kinds -------------------------------------------------------------------------------------------------
def test_builtin_is_real_cifar10_tiny():
    data = load_data(DataConfig())
    assert data.summary() == {"name": "builtin:cifar10_tiny", "classes": 10, "image_size": 32, "train": 1600,
                              "holdout": 400, "test": 500}
    assert data.x_train.dtype == np.uint8 and data.x_train.shape == (1600, 32, 32, 3)
    assert data.classes[0] == "airplane" and np.bincount(data.y_holdout).tolist() == [40] * 10
    assert all(0.3 < m < 0.6 for m in data.mean) and all(0.15 < s < 0.35 for s in data.std)
    # Held-out images are training images, none of them in the training subset.
    train_rows = {row.tobytes() for row in data.x_train.reshape(len(data.x_train), -1)}
    assert not any(row.tobytes() in train_rows for row in data.x_holdout.reshape(len(data.x_holdout), -1))


def test_load_data_is_cached_per_config():
    a = load_data(DataConfig(seed=5))
    assert load_data(DataConfig(seed=5)) is a
    assert load_data(DataConfig(seed=6)) is not a


def test_npz(npz_file):
    data = load_data(DataConfig(kind="npz", path=str(npz_file), holdout=12, train_limit=30))
    assert (len(data.y_holdout), len(data.y_train), len(data.y_test)) == (12, 30, 20)
    assert data.classes == ("c0", "c1", "c2") and data.image_size == 8
    x, y = data.split("test")
    assert x.shape == (20, 8, 8, 3) and y.dtype == np.int64


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("y_test"), "lacks y_test"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), r"x_train must be uint8 images of shape"),
    (lambda a: a.update(x_train=a["x_train"][..., :1]), r"\(N, H, W, 3\)"),
    (lambda a: a.update(y_train=a["y_train"][:5]), r"y_train must be integer labels of shape \(60,\)"),
    (lambda a: a.update(x_test=np.zeros((20, 4, 4, 3), np.uint8)), "same image shape"),
])
def test_malformed_npz_names_path_and_expectation(tmp_path, change, message):
    arrays = _arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as err:
        load_data(DataConfig(kind="npz", path=str(path)))
    assert "bad.npz" in str(err.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.npz.*does not exist.*x_train"):
        load_data(DataConfig(kind="npz", path=str(tmp_path / "nope.npz")))
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(ValueError, match=r"junk.npz.*not a readable .npz"):
        load_data(DataConfig(kind="npz", path=str(junk)))
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py"):
        load_data(DataConfig(kind="cifar10", path=str(tmp_path / "missing")))
    with pytest.raises(FileNotFoundError, match=r"image folder .*does not exist"):
        load_data(DataConfig(kind="imagefolder", path=str(tmp_path / "missing")))


def _write_cifar(folder, per_batch=6):
    """A folder in the official format: dicts of bytes keys, lists and a uint8 array pickled by numpy's
    _reconstruct (protocol 4: Python 3 writes bytes as bytes, as the Python 2 release's str loads)."""
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        # CHW rows: channel c of every image is filled with 10 * c + label.
        labels = [i % 10 for i in range(per_batch)]
        data = np.stack([np.concatenate([np.full(1024, 10 * c + lab, np.uint8) for c in range(3)]) for lab in labels])
        entry = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=4)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"num_cases_per_batch": per_batch, b"label_names": [f"k{i}".encode() for i in range(10)],
                     b"num_vis": 3072}, fh, protocol=4)


class _Payload:
    """A harmless payload: unpickling it calls open(marker, "w"), creating the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("name", ["data_batch_2", "batches.meta"])
def test_cifar10_crafted_pickle_is_refused_not_run(tmp_path, name):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    marker = tmp_path / "marker"
    with open(folder / name, "wb") as fh:
        pickle.dump({b"data": _Payload(marker), b"labels": [0], b"label_names": [b"a"]}, fh, protocol=4)
    with pytest.raises(ValueError, match=rf"{name}.*refused: it names io\.open") as err:
        load_data(DataConfig(kind="cifar10", path=str(folder)))
    assert len(str(err.value).splitlines()) == 1
    assert not marker.exists()
    pickle.loads((folder / name).read_bytes())  # the same file, plainly unpickled, runs the payload
    assert marker.exists()


def test_cifar10_python_release(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_data(DataConfig(kind="cifar10", path=str(tmp_path), holdout=5))  # the parent folder works
    assert len(data.y_train) + len(data.y_holdout) == 30 and len(data.y_test) == 6
    assert data.classes == tuple(f"k{i}" for i in range(10))
    x, y = data.x_train, data.y_train
    assert x.shape[1:] == (32, 32, 3)
    assert np.array_equal(x[:, 0, 0, :], np.stack([10 * np.arange(3) + lab for lab in y]))  # CHW -> HWC


def test_cifar10_missing_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        load_data(DataConfig(kind="cifar10", path=str(folder)))
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"data_batch_3.*malformed"):
        load_data(DataConfig(kind="cifar10", path=str(folder)))


def _write_folder(root, sizes=((40, 24), (24, 40), (30, 30)), per_class=4, fmt="PNG"):
    from PIL import Image

    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            Image.new("RGB", (w, h), rgb).save(root / name / f"{i}.{fmt.lower()}", fmt)
    return list(colours)


def test_imagefolder_train_val_layout_and_cache(tmp_path):
    names = _write_folder(tmp_path / "ds" / "train")
    _write_folder(tmp_path / "ds" / "val", per_class=2, fmt="JPEG")
    cfg = DataConfig(kind="imagefolder", path=str(tmp_path / "ds"), holdout=3, image_size=16, workers=2,
                     cache_dir=str(tmp_path / "cache"))
    data = load_data(cfg)
    assert data.classes == tuple(names) and data.image_size == 16
    assert (len(data.y_train), len(data.y_holdout), len(data.y_test)) == (9, 3, 6)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.shape[1:] == (16, 16, 3)
        # blue, green, red: the brightest channel of each image is its class colour.
        assert np.array_equal(x.reshape(len(x), -1, 3).mean(1).argmax(1), 2 - y)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3  # holdout, train, test
    load_data.cache_clear()
    again = load_data(cfg)
    assert np.array_equal(again.x_train, data.x_train)


def test_imagefolder_errors(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    with pytest.raises(ValueError, match="has no class subfolders"):
        load_data(DataConfig(kind="imagefolder", path=str(root)))
    _write_folder(root)
    (root / "red" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"broken.jpg.*could not be decoded"):
        load_data(DataConfig(kind="imagefolder", path=str(root), holdout=0.5))


# -- config ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"path": "x.npz"}, "not used with kind 'builtin'"),
    ({"kind": "npz"}, "data.path is required with kind 'npz'"),
    ({"holdout": 0}, "data.holdout must be"),
    ({"holdout": 1.5}, "data.holdout must be"),
    ({"train_limit": 0}, "data.train_limit must be >= 1"),
    ({"workers": 0}, "data.workers must be >= 1"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(**kwargs)


def test_yaml_section():
    cfg = from_dict(DataConfig, {"kind": "npz", "path": "a.npz", "holdout": 2000}, "data")
    assert cfg.holdout == 2000.0
    with pytest.raises(ConfigError, match=r"data.kind: 'mnist' is not allowed"):
        from_dict(DataConfig, {"kind": "mnist"}, "data")
    with pytest.raises(ConfigError, match=r"data.holdot: unknown key"):
        from_dict(DataConfig, {"holdot": 0.1}, "data")
