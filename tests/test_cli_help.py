"""`nas --help`, `nas CMD --help` and `nas --version` answer at once: no torch, no Ray, well under a second."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys; from nas.cli import main\n"
         "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
         "print('HEAVY:' + ','.join(m for m in ('torch', 'ray', 'efficientnet', 'matplotlib') if m in sys.modules))")


@pytest.mark.parametrize("argv", [["--help"], ["--version"]] + [[c, "--help"] for c in COMMANDS]
                         + [["supernet", "train", "--help"], ["supernet", "eval", "--help"]])
def test_help_imports_no_torch_and_takes_well_under_a_second(argv):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.stdout.strip().splitlines()[-1] == "HEAVY:", done.stdout[-500:] + done.stderr[-2000:]
    assert cpu_s < 1.0, f"{argv}: {cpu_s:.2f} s of CPU"


def test_version_is_the_package_version(capsys):
    import nas

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"effnas {nas.__version__}"


def test_every_command_help_reads_well(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        assert f"usage: nas {name}" in text and "(default: True)" not in text and "(default: False)" not in text


def test_numbers_written_in_help_texts_are_the_library_defaults():
    """Help texts that name a default without importing torch state the library's value (checked here)."""
    from efficientnet import DEFAULT_RESOLUTION, NUM_CLASSES
    from efficientnet.compound import DEFAULT_MAX_PHI, PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA
    from nas.commands import common, export, profile, scale
    from nas.cost.target import TargetModel
    from nas.export import DEFAULT_OPSET

    t = TargetModel()
    assert (t.resolution, t.width, t.depth, t.num_classes) == (224, 1.0, 1.0, 1000) == (DEFAULT_RESOLUTION, 1.0, 1.0,
                                                                                        NUM_CLASSES)
    assert (PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA, DEFAULT_MAX_PHI, DEFAULT_OPSET) == (1.2, 1.1, 1.15, 7, 17)
    import inspect

    for module, needles in ((profile, ["TargetModel's, 224", "TargetModel's, 1000", "TargetModel's, 1.0"]),
                            (scale, ["the paper's 1.2", "the paper's 1.1", "the paper's 1.15", "default 7",
                                     "default 224"]),
                            (export, ["DEFAULT_OPSET, 17"]), (common, ["ImageNet's 1000"])):
        source = inspect.getsource(module)
        assert all(n in source for n in needles), (module.__name__, needles)


def test_supernet_train_points_to_the_shipped_search_of_its_own_space():
    from pathlib import Path

    import yaml

    from nas.commands.supernet import SEARCH_WITH, next_steps

    macro = next_steps("nas-bench-macro", "runs/S/supernet.pt")
    assert macro[1] == "search with it: nas search experiments/quickstart.yaml --set evaluator.checkpoint=runs/S/supernet.pt"
    assert "b0" not in macro[0]  # MnasNet names are not paths of another space
    mnas = next_steps("mnasnet", "runs/M/supernet.pt")
    assert "experiments/quickstart_mnasnet.yaml" in mnas[1] and "b0 mnasnet-a1" in mnas[0]
    assert "YOUR_EXPERIMENT.yaml" in next_steps("tiny", "x")[1]
    root = Path(__file__).resolve().parent.parent
    for space, path in SEARCH_WITH.items():
        cfg = yaml.safe_load((root / path).read_text())
        assert cfg["space"] == space and cfg["evaluator"]["kind"] == "supernet", path
