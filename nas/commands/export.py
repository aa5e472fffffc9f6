"""``nas export``: a genotype at any width, depth and resolution as an ONNX file.

``nas export GENOTYPE_OR_RUN_DIR [--model NAME | --width W --depth D --resolution R] --onnx FILE``
builds the model (random initial weights with BatchNorm statistics calibrated on
one random batch, or ``--weights``), exports it with
``nas.export.export_onnx`` and, with ``--check``, runs the file in onnxruntime
against the PyTorch outputs.  Given a ``nas train`` run dir it exports the trained
model: the architecture from ``model.yaml``, the weights from ``weights.pt`` (or
``--weights`` naming another file or a checkpoint folder).
"""

from __future__ import annotations

import argparse
import sys

from .common import MODEL_HELP, add_num_classes, human, model_name, num_classes, positive_float, positive_int, print_json

#: Largest |onnxruntime - torch| / max(1, |logits|) that --check accepts (float32 on CPU: ~1e-6).
CHECK_TOLERANCE = 1e-4


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Build a genotype at a width, depth and resolution and write it as ONNX (dynamic batch, input "
                     "'input', output 'logits').  Without --weights (or a training run dir) the weights are random: "
                     "the output line says so.")
    p.add_argument("genotype", metavar="GENOTYPE_OR_RUN_DIR",
                   help="b0, mnasnet-a1, a block string, a search run directory (its best.yaml genotype), or a "
                        "`nas train` run directory (its model.yaml and trained weights.pt)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help=f"official coefficients (width, depth, resolution): {MODEL_HELP}; default efficientnet-b0")
    p.add_argument("--width", type=positive_float, default=None, help="width multiplier (overrides --model)")
    p.add_argument("--depth", type=positive_float, default=None, help="depth multiplier (overrides --model)")
    p.add_argument("--resolution", type=positive_int, default=None, help="input resolution (overrides --model)")
    add_num_classes(p)
    p.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset (default: nas.export.DEFAULT_OPSET, 17; up to the newest your torch exports)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a torch.save'd state dict (or {'model': state dict}) to export instead of random weights; "
                        "with a training run dir: another weights file or a checkpoint folder RUN_DIR/epoch_NNNN")
    p.add_argument("--check", action="store_true",
                   help="run the file in onnxruntime and compare with PyTorch "
                        f"(max abs diff <= {CHECK_TOLERANCE:g} x max(1, |logits|))")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _model(args: argparse.Namespace, gen):
    """(module, spec, genotype, where the weights came from) of the arguments."""
    import torch

    from efficientnet import build_model, model_spec
    from nas.export import calibrate_batchnorm, calibration_batch, load_weights
    from nas.search.results import resolve_genotype_or_run
    from nas.train.checkpoint import WEIGHTS, is_train_run, load_trained

    if is_train_run(args.genotype):  # a `nas train` run dir: its model record and trained weights
        given = [f"--{n.replace('_', '-')}" for n in ("model", "width", "depth", "resolution")
                 if getattr(args, n) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: a training run dir fixes the model; drop the option(s)")
        model, spec = load_trained(args.genotype, args.weights)
        return model, spec, spec.genotype, f"trained weights from {args.weights or f'{args.genotype}/{WEIGHTS}'}"
    genotype = resolve_genotype_or_run(args.genotype)
    spec = model_spec(genotype, model=None if args.model is None else model_name(args.model), width=args.width,
                      depth=args.depth, resolution=args.resolution, num_classes=num_classes(args))
    model = build_model(spec)
    if args.weights:
        load_weights(model, args.weights)
        return model, spec, genotype, f"weights from {args.weights}"
    # random weights: give BatchNorm real statistics so the outputs (and --check) are not ~1e-10
    calibration = torch.randn(calibration_batch(spec.resolution), 3, spec.resolution, spec.resolution, generator=gen)
    calibrate_batchnorm(model, calibration)
    return model, spec, genotype, "RANDOM weights (untrained; pass --weights FILE or a `nas train` run dir)"


def run(args: argparse.Namespace) -> int:
    import torch

    from efficientnet import count_spec
    from nas.export import (DEFAULT_OPSET, check_opset, check_output_path, compare_onnx, export_onnx, onnxruntime,
                            require_onnx)

    args.opset = DEFAULT_OPSET if args.opset is None else args.opset
    check_opset(args.opset)
    require_onnx()
    if args.check:
        onnxruntime("--check")
    check_output_path(args.onnx)
    gen = torch.Generator().manual_seed(0)
    model, spec, genotype, weights = _model(args, gen)
    check_inputs = torch.randn(2, 3, spec.resolution, spec.resolution, generator=gen)
    path = export_onnx(model, args.onnx, spec.resolution, opset=args.opset)
    params, macs = count_spec(spec)
    info = {"onnx": str(path), "opset": args.opset, "input_shape": ["batch", 3, spec.resolution, spec.resolution],
            "genotype": genotype.to_string(), "width": spec.width, "depth": spec.depth,
            "resolution": spec.resolution, "num_classes": spec.num_classes, "params": params, "macs": macs,
            "bytes": path.stat().st_size, "weights": weights, "random_weights": weights.startswith("RANDOM")}
    comparison = None
    if args.check:
        comparison = compare_onnx(path, model, check_inputs)
        info["max_abs_diff"], info["max_abs_output"] = comparison
        info["check_ok"] = comparison.scaled_diff <= CHECK_TOLERANCE
    if args.json:
        print_json(info)
    else:
        print(f"wrote {path} (opset {args.opset}, input batch x 3 x {spec.resolution} x {spec.resolution}, "
              f"{human(info['bytes'])}B) with {weights}")
        print(f"width {spec.width:g}, depth {spec.depth:g}, params {params:,}, MACs {human(macs)}")
        if comparison is not None:
            print(f"onnxruntime vs PyTorch: max abs diff {comparison.max_abs_diff:.3g} on logits up to "
                  f"{comparison.max_abs_output:.3g} ({'ok' if info['check_ok'] else 'FAILED'}, tolerance "
                  f"{CHECK_TOLERANCE:g} x max(1, |logits|))")
    if comparison is not None and not info["check_ok"]:
        print(f"nas: error: onnxruntime outputs differ from PyTorch by {comparison.max_abs_diff:.3g} on logits "
              f"up to {comparison.max_abs_output:.3g}, more than {CHECK_TOLERANCE:g} x max(1, |logits|)",
              file=sys.stderr)
        return 1
    return 0
