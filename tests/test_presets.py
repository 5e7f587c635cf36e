"""Every shipped preset parses, documents its source, and dry-runs."""
import re

import pytest

from unlearnbench.harness.cli import main
from unlearnbench.harness.protocol.config import Grid, apply_mapping, expand, load_toml, preset_names, resolve_config

PRESETS = preset_names()


def test_the_paper_presets_ship():
    for name in ("muso_cifar10_resnet18", "muso_cifar100_resnet18", "muso_cifar100_class",
                 "muso_cifar20_subclass", "salun_cifar10_resnet18", "fashion_mnist_cnn"):
        assert name in PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_dry_run_lists_its_runs(name, capsys):
    specs = expand(apply_mapping(Grid(), load_toml(name), name))
    assert main(["run", "--config", name, "--dry-run"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"{len(specs)} runs" and len(specs) > 0
    assert {line.split()[0] for line in out[:-1]} == {s.key for s in specs}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_header_names_its_source(name):
    header = "".join(line for line in resolve_config(name).read_text().splitlines(True) if line.startswith("#"))
    assert re.search(r"Source:", header), name


@pytest.mark.parametrize("name, values", [
    ("muso_cifar10_resnet18", ["93.29 / 92.96 / 79.00", "92.91 / 93.57 / 80.75"]),
    ("muso_cifar100_resnet18", ["76.41 / 75.28 / 55.44", "75.44 / 74.68 / 54.59"]),
])
def test_muso_presets_carry_the_published_retrain_values(name, values):
    text = resolve_config(name).read_text()
    for v in values:
        assert v in text


def test_paper_presets_train_as_the_reference():
    """MUSO's recipe: SGD 0.9, lr 0.1, wd 5e-4, 100 epochs, batch 128, 2 warm-up
    epochs, step decay at epochs 80 and 90, crop + flip, all 50k images."""
    from unlearnbench.methods._train import lr_factor

    for name in ("muso_cifar10_resnet18", "muso_cifar100_resnet18", "muso_cifar100_class", "muso_cifar20_subclass"):
        spec = expand(apply_mapping(Grid(), load_toml(name), name))[0]
        t = spec.train
        assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.epochs, t.batch_size, t.warmup_epochs, t.augment) == \
               ("sgd", 0.1, 0.9, 5e-4, 100, 128, 2, True) and spec.val_frac == 0.0, name
        steps = 391                                              # 50,000 / 128
        factor = lambda epoch: lr_factor(int(epoch * steps), 100 * steps, steps, t)
        assert factor(79.99) == 1.0 and factor(80.01) == pytest.approx(0.1) and factor(90.01) == pytest.approx(0.01)


def test_fashion_mnist_preset_is_the_cpu_benchmark():
    from unlearnbench.methods import list_methods

    specs = expand(apply_mapping(Grid(), load_toml("fashion_mnist_cnn"), "fashion_mnist_cnn"))
    assert {s.method for s in specs} == set(list_methods())              # every registered method
    assert {s.scenario.label for s in specs} == {"random 10%", "class 0"}  # class 0 = t-shirt/top
    assert {s.seed for s in specs} == {0, 1, 2}
    subsets = {(s.dataset, s.model, s.train_subset, s.test_subset) for s in specs}
    assert subsets == {("fashion_mnist", "cnn", 5000, 2000)}


def test_full_preset_is_the_default_benchmark_plus_full_fashion_mnist():
    full = expand(apply_mapping(Grid(), load_toml("full"), "full"))
    default = expand(apply_mapping(Grid(), load_toml("default"), "default"))
    keys = {s.key for s in full}
    assert {s.key for s in default} <= keys                         # every default run, the same keys
    fashion = [s for s in full if s.dataset == "fashion_mnist"]
    assert len(keys) == len(full) == len(default) + len(fashion)    # each run once
    assert {(s.model, s.train_subset, s.test_subset) for s in fashion} == {("mlp", None, None)}  # all 60k / 10k
    assert {s.scenario.label for s in fashion} == {"random 10%", "class 0"}
    assert {s.seed for s in fashion} == set(range(5))
    from unlearnbench.methods import list_methods
    # muso_released's float32 N x N inverses cost 45 min a run at this scale (configs/full.toml says so)
    assert {s.method for s in fashion} == set(list_methods()) - {"muso_released"}


def test_included_grids_take_the_command_line_and_the_including_folders(tmp_path, capsys):
    (tmp_path / "mine.toml").write_text('include = ["default"]\ndatasets = ["fashion_mnist"]\nscenarios = ["class"]\n'
                                        'out = "elsewhere"\n')
    from unlearnbench.harness.cli import build_parser
    from unlearnbench.harness.protocol.config import grid_from_args

    args = build_parser().parse_args(["run", "--config", str(tmp_path / "mine.toml"), "--seeds", "3",
                                      "--methods", "muso"])
    grid = grid_from_args(args)
    assert [p.out for p in grid.parts] == ["elsewhere"] and grid.parts[0].datasets == ["digits"]
    specs = expand(grid)
    assert {(s.dataset, s.scenario.label) for s in specs} == {("digits", "random 10%"), ("digits", "random 50%"),
                                                              ("digits", "class 0"), ("fashion_mnist", "class 0")}
    assert {(s.seed, s.method) for s in specs} == {(3, "muso")}
    (tmp_path / "nested.toml").write_text(f'include = ["{tmp_path / "mine.toml"}"]\n')
    assert main(["run", "--config", str(tmp_path / "nested.toml"), "--dry-run"]) == 2
    assert "one level of include" in capsys.readouterr().err


def test_tuning_a_config_tunes_its_own_tables_not_the_included_ones(tmp_path, capsys):
    assert main(["tune", "finetune", "--config", "full", "--trials", "1", "--out", str(tmp_path), "--dry-run"]) == 0
    studies = [line for line in capsys.readouterr().out.splitlines() if line.startswith("finetune ")]
    assert studies and all("fashion_mnist/mlp" in line for line in studies), studies
