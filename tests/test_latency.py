"""Hardware targets: measurement, latency tables, validation, the latency cost and `nas profile`.

Everything here runs on the CPU at tiny settings (tiny space, 32x32, few
passes).  The CUDA test is marked ``gpu`` and skipped where there is none; the
build-and-validate test, which runs whole networks for seconds, is marked
``training`` with the other slow CPU tests.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from efficientnet import build_model, layer_cost, walk
from nas.cli import main
from nas.cost.base import CostModel, build_cost_model
from nas.cost.target import TargetModel
from nas.cost.objective import ObjectiveConfig, reward
from nas.cost.latency import (FORMAT, LatencyCost, LatencyTable, Measurement, MeasureSettings, MissingLayerError,
                              TableModel, build_table, cpu_threads, describe_target, fit_calibration, layer_module,
                              measure_genotypes, measure_module, model_layers, sampled_layers, space_layers, spearman,
                              validate_table)
from search_spaces import BlockGene, Genotype, get_space, named_genotype

TINY = TargetModel(resolution=32, num_classes=10)
FAST = MeasureSettings(warmup=1, repeats=3, rounds=1, pin=False)


def _settings(**kw) -> MeasureSettings:
    return MeasureSettings(**{**FAST.__dict__, **kw})


def _synthetic_table(space: str = "tiny", target: TargetModel = TINY, per_mac: float = 1e-6) -> LatencyTable:
    """A table whose every layer of the space costs MACs * per_mac ms (no measuring)."""
    table = LatencyTable(settings=FAST, model=TableModel.of(space, target), target=describe_target(FAST))
    for spec in space_layers(get_space(space), target):
        macs = layer_cost(spec)[1] if spec.kind != "classifier" else spec.in_filters * spec.out_filters
        table.entries[spec.key()] = Measurement(macs * per_mac, 0.0, 0.0, macs * per_mac, 3)
    return table


def _tiny(filters=(8, 16, 24), op="mbconv", expand=1, kernel=3, se=0.0, layers=(1, 1, 1)) -> Genotype:
    strides = (1, 2, 2)
    return Genotype(tuple(BlockGene(op=op, kernel=kernel, stride=s, expand=expand, se=se, filters=f, layers=n)
                          for s, f, n in zip(strides, filters, layers)))


# -- settings and records -------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, word", [
    ({"backend": "tpu"}, "backend"), ({"threads": 0}, "threads"), ({"repeats": 0}, "repeats"),
    ({"clock": "cpu", "threads": 2}, "threads=1"), ({"clock": "cpu", "backend": "cuda"}, "clock"),
    ({"backend": "onnxruntime", "dtype": "bf16"}, "fp32"), ({"statistic": "mean"}, "statistic"),
    ({"batch": True}, "batch"),
])
def test_settings_reject_bad_values(kw, word):
    with pytest.raises(ValueError, match=word):
        MeasureSettings(**kw)


def test_measurement_statistics_by_hand():
    m = Measurement.from_times([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (m.median_ms, m.min_ms, m.iqr_ms, m.repeats) == (3.0, 1.0, 2.0, 5)
    assert m.value("min") == 1.0 and m.value("median") == 3.0
    assert Measurement.from_dict(m.to_dict()) == m
    with pytest.raises(ValueError):
        Measurement.from_times([1.0, float("nan")])


def test_spearman_and_calibration_fit_by_hand():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)  # tie: ranks 1, 2.5, 2.5, 4
    scale, offset = fit_calibration([1.0, 2.0, 4.0], [3.0, 5.0, 9.0])  # measured = 2 * raw + 1
    assert (scale, offset) == (pytest.approx(2.0), pytest.approx(1.0))
    # Theil-Sen: one wild measurement out of five does not move the fit
    assert fit_calibration([1, 2, 3, 4, 5], [3, 5, 7, 9, 50]) == (pytest.approx(2.0), pytest.approx(1.0))
    assert fit_calibration([1.0, 2.0], [1.5, 3.5]) == (pytest.approx(1.625), 0.0)  # too few: median ratio
    assert fit_calibration([], []) == (1.0, 0.0)


def test_steady_malloc_on_glibc_and_recorded():
    import platform

    from nas.cost.latency.measure import steady_malloc

    glibc = platform.libc_ver()[0] == "glibc"
    assert steady_malloc() is glibc
    info = describe_target(FAST)
    assert info["malloc"].startswith("glibc") is glibc
    assert {"device", "threads", "torch", "date", "host", "pinned_cpus"} <= set(info)


def test_cpu_threads_sets_and_restores_threads_and_affinity():
    before_threads = torch.get_num_threads()
    before_mask = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with cpu_threads(1, pin=True) as cpus:
        assert torch.get_num_threads() == 1
        if before_mask is not None:
            assert cpus is not None and len(cpus) == 1 and os.sched_getaffinity(0) == set(cpus)
    assert torch.get_num_threads() == before_threads
    if before_mask is not None:
        assert os.sched_getaffinity(0) == before_mask


# -- which layers, and that they are the model's -------------------------------------------------------


def test_space_layers_cover_every_sampled_genotype():
    for name, target in (("tiny", TINY), ("mnasnet", TargetModel(resolution=64))):
        space = get_space(name)
        layers = space_layers(space, target)
        keys = {s.key() for s in layers}
        assert len(keys) == len(layers)  # distinct
        rng = np.random.default_rng(0)
        for _ in range(200):
            g = space.sample(rng)
            missing = [s for s in model_layers(g, target) if s.key() not in keys]
            assert not missing, (g.to_string(), missing[:1])
        if name == "mnasnet":  # B0 is a point of the space: its layers are all there
            assert {s.key() for s in model_layers(named_genotype("b0"), target)} <= keys
    assert len(space_layers(get_space("tiny"), TINY)) == 292  # stem + 288 block layers + 2 heads + classifier


def test_layer_modules_are_the_models_blocks():
    g = get_space("tiny").sample(np.random.default_rng(3))
    model = build_model(TINY.spec(g))
    layers = walk(TINY.spec(g).arch(), TINY.resolution)
    modules = [model.stem, *model.blocks, model.head]
    assert len(modules) == len(layers)
    for spec, module in zip(layers, modules):
        mine = {k: v.shape for k, v in layer_module(spec).state_dict().items()}
        theirs = {k: v.shape for k, v in module.state_dict().items()}
        assert mine == theirs, spec
        assert sum(p.numel() for p in layer_module(spec).parameters()) == layer_cost(spec)[0]


# -- the table ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_table_round_trips_and_predicts_the_sum(tmp_path, suffix):
    table = _synthetic_table()
    table.scale, table.offset_ms = 1.5, 0.25
    g = get_space("tiny").sample(np.random.default_rng(1))
    expected = 1.5 * sum(table.entries[s.key()].median_ms for s in model_layers(g, TINY)) + 0.25
    assert table.predict(g) == pytest.approx(expected)
    loaded = LatencyTable.load(table.save(tmp_path / f"lut{suffix}"))
    assert loaded.entries == table.entries and loaded.settings == table.settings and loaded.model == table.model
    assert loaded.target == table.target
    assert loaded.predict(g) == pytest.approx(expected)


def test_table_file_errors_are_clear(tmp_path):
    path = _synthetic_table().save(tmp_path / "lut.json")
    data = json.loads(path.read_text())
    with pytest.raises(FileNotFoundError, match="nas profile"):
        LatencyTable.load(tmp_path / "nope.json")
    (tmp_path / "v.json").write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        LatencyTable.load(tmp_path / "v.json")
    (tmp_path / "f.json").write_text(json.dumps({"entries": []}))
    with pytest.raises(ValueError, match=FORMAT):
        LatencyTable.load(tmp_path / "f.json")
    (tmp_path / "d.json").write_text(json.dumps({**data, "entries": [{"kind": "stem"}]}))
    with pytest.raises(ValueError, match="lacks"):
        LatencyTable.load(tmp_path / "d.json")


# -- the cost ----------------------------------------------------------------------------------------------


def test_latency_cost_is_a_cost_model_and_orders_by_size(tmp_path):
    path = _synthetic_table().save(tmp_path / "lut.json")
    objective = ObjectiveConfig(cost="latency", target=0.5, latency_table=str(path))
    cost = build_cost_model(objective.cost, TINY, objective.latency_table)
    assert isinstance(cost, LatencyCost) and isinstance(cost, CostModel)
    assert (cost.name, cost.unit) == ("latency", "ms")
    small, big = _tiny(), _tiny(filters=(16, 24, 32), expand=6, kernel=5, se=0.25, layers=(1, 2, 2))
    assert 0 < cost.cost(small) < cost.cost(big)
    hard = ObjectiveConfig(cost="latency", target=cost.cost(small) * 1.01, form="hard", latency_table=str(path))
    assert reward(0.5, cost.cost(small), hard) == 0.5  # under T: no penalty in the hard form
    assert reward(0.5, cost.cost(big), hard) < 0.5


def test_latency_cost_refuses_another_target(tmp_path):
    path = _synthetic_table().save(tmp_path / "lut.json")
    with pytest.raises(ValueError, match=r"resolution: table 32, target 224.*--resolution 224"):
        LatencyCost.from_table(path, TargetModel(resolution=224, num_classes=10))
    with pytest.raises(ValueError, match="num_classes"):
        LatencyCost.from_table(path, TargetModel(resolution=32, num_classes=1000))
    with pytest.raises(ValueError, match="latency_table"):
        LatencyCost.from_table(None, TINY)


def test_missing_layer_raises_or_is_measured_and_saved(tmp_path):
    g = _tiny()
    table = _synthetic_table()
    table.settings = FAST
    gone = model_layers(g, TINY)[2].key()
    del table.entries[gone]
    path = table.save(tmp_path / "lut.json")
    with pytest.raises(MissingLayerError, match=r"no entry for layer mbconv i8 o16 k3 s2 e1 silu @16.*measure_missing"):
        LatencyCost.from_table(path, TINY).cost(g)
    cost = LatencyCost.from_table(path, TINY, measure_missing=True)
    assert cost.cost(g) > 0
    assert gone in LatencyTable.load(path).entries  # written back


# -- measuring for real (tiny) -----------------------------------------------------------------------------


def test_measure_module_cpu_and_onnxruntime():
    spec = model_layers(_tiny(), TINY)[1]
    for backend in ("cpu", "onnxruntime"):
        shape = (spec.in_filters, spec.in_size, spec.in_size)
        m = measure_module(layer_module(spec), shape, _settings(backend=backend))
        assert m.repeats == 3 and 0 < m.min_ms <= m.median_ms < 1000


@pytest.mark.parametrize("backend, dtype, batch", [("cpu", "bf16", 4), ("cpu", "fp32", 3), ("onnxruntime", "fp32", 3)])
def test_bf16_and_batch_are_measured(backend, dtype, batch):
    """The module measured sees inputs of the settings' batch and dtype (ONNX Runtime, fp32 only: the
    exported graph's, whose batch is fixed)."""
    spec = model_layers(_tiny(), TINY)[1]
    module, seen = layer_module(spec), set()
    module.register_forward_pre_hook(lambda _m, args: seen.add((int(args[0].shape[0]), args[0].dtype)))
    m = measure_module(module, (spec.in_filters, 32, 32), _settings(backend=backend, dtype=dtype, batch=batch))
    assert m.median_ms > 0
    want = torch.bfloat16 if dtype == "bf16" else torch.float32
    assert seen == {(batch, want)}


def test_cuda_target_says_why_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; see test_cuda_measures")
    with pytest.raises(ValueError, match="CUDA device"):
        measure_module(torch.nn.Identity(), (3, 8, 8), _settings(backend="cuda"))


@pytest.mark.gpu
def test_cuda_measures():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    table = build_table(get_space("tiny"), TINY, _settings(backend="cuda", repeats=5), samples=2,
                        calibrate_genotypes=3)
    assert table.target["device"] == torch.cuda.get_device_name(0)
    for dtype in ("fp32", "bf16"):
        m = measure_genotypes([_tiny()], TINY, _settings(backend="cuda", dtype=dtype, repeats=5))[0]
        assert 0 < m.median_ms < 1000


@pytest.mark.training  # not training, but whole networks run for real for seconds: with the slow tests
def test_build_and_validate_a_small_table():
    """Layer sums within 2x of whole-model measurements, ranks correlated, for clearly different sizes.

    The 2x bound is on the uncalibrated sum (a calibration fitted on three
    genotypes of a loaded CI machine is noisy); a positive scale keeps ranks.
    Timed with the thread's CPU time: wall time on a machine running several
    other jobs stretches a whole model far more than a short isolated layer.
    """
    target = TargetModel(resolution=64, num_classes=10)
    settings = _settings(repeats=5, rounds=2, clock="cpu")  # CPU time: a loaded CI machine cannot skew it
    sizes = [_tiny(), _tiny(filters=(16, 16, 24), expand=3), _tiny(filters=(16, 24, 32), expand=6, layers=(1, 2, 2)),
             _tiny(filters=(16, 24, 32), expand=6, kernel=5, se=0.25, layers=(1, 2, 2), op="mbconv")]
    table = build_table(get_space("tiny"), target, settings, samples=2, calibrate_genotypes=3, seed=0)
    calibrated = [Genotype.from_string(s) for s in table.calibration["genotypes"]]
    assert len(calibrated) == 3  # the 2 sampled genotypes and one more
    assert set(table.entries) == {s.key() for s in sampled_layers(calibrated, target)}
    assert table.scale > 0
    report = validate_table(table, sizes, measure_missing=True)
    assert report.added_layers > 0
    for row in report.rows:
        raw = (row.predicted_ms - table.offset_ms) / table.scale
        assert 0.5 < raw / row.measured_ms < 2.0, row
    assert report.spearman > 0


# -- the CLI -----------------------------------------------------------------------------------------------


def test_cli_build_validate_measure(tmp_path, capsys):
    out = tmp_path / "lut.json"
    common = ["--warmup", "1", "--repeats", "3", "--rounds", "1", "--no-pin"]
    assert main(["profile", "--space", "tiny", "--resolution", "32", "--num-classes", "10", "--samples", "2",
                 "--calibrate", "3", *common, "--out", str(out), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["entries"] == len(LatencyTable.load(out).entries) and built["backend"] == "cpu"
    assert main(["profile", "--validate", str(out), "--genotypes", "3", "--measure-missing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["genotypes"] == 3 and len(report["rows"]) == 3 and report["mean_abs_rel_error"] >= 0
    g = report["rows"][0]["genotype"]  # its layers are in the table now
    assert main(["profile", "--measure", g, "--table", str(out), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["latency_ms"] > 0 and one["predicted_ms"] > 0 and one["resolution"] == 32


def test_cli_user_mistakes_are_one_line(tmp_path, capsys):
    assert main(["profile", "--validate", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas: error: latency table") and "\n" not in err
    assert main(["profile", "--measure", "b0", "--target", "cpu", "--clock", "cpu", "--threads", "2"]) == 2
    assert "threads=1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--out", "a.json", "--validate", "b.json"])
    assert exit_info.value.code == 2
