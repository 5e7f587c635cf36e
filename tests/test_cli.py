"""The command line: bad input, --help start-up, resume after SIGKILL, leaderboard."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unlearnbench.harness.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "unlearnbench.harness.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_help_does_not_import_torch():
    code = ("import sys; from unlearnbench.harness.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported by --help'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("args, needle", [
    (["--datasets", "cifar11"], "unknown dataset 'cifar11'; accepted: cifar10, cifar100"),
    (["--models", "vit"], "unknown model 'vit'; accepted:"),
    (["--methods", "nope"], "unknown method 'nope'; accepted: original, retrain"),
    (["--scenarios", "subset"], "unknown scenario 'subset'; accepted: random, class"),
    (["--ratios", "1.5"], "forget ratio 1.5 is outside (0, 1)"),
    (["--ratios", "0"], "forget ratio 0.0 is outside (0, 1)"),
    (["--ratios", "abc"], "--ratios: 'abc' is not a comma-separated list of floats"),
    (["--classes", "10"], "class 10 does not exist in dataset 'digits'; accepted: 0..9"),
    (["--seeds", "-1"], "seed -1 is not a non-negative integer"),
    (["--method-arg", "finetune.learning_rate=1"], "unknown hyperparameter 'learning_rate' for method 'finetune'"),
    (["--method-arg", "finetune.lr=fast"], "finetune.lr='fast' is not a valid float"),
    (["--train-arg", "epochz=3"], "unknown training option(s) 'epochz'"),
    (["--datasets", "fashion_mnist", "--data-root", "/nonexistent"],
     "Fashion-MNIST not found (looked in /nonexistent/FashionMNIST/raw"),
    (["--config", "/nonexistent.toml"], "config file '/nonexistent.toml' not found; shipped presets: default"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    code = main(["run", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1           # one line
    assert not out.exists()


def test_misspelled_config_key(tmp_path, capsys):
    cfg = tmp_path / "grid.toml"
    cfg.write_text('datasets = ["digits"]\nseed = [0]\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'seed' (did you mean 'seeds'?)" in err
    cfg.write_text('datasets = [digits\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_config_file_and_overrides(tmp_path, capsys):
    cfg = tmp_path / "grid.toml"
    cfg.write_text('seeds = [4]\nscenarios = ["random"]\nratios = [0.2]\nmethods = ["finetune"]\n'
                   '[method_args.finetune]\nepochs = 2\n[train]\nepochs = 5\n')
    assert main(["run", "--config", str(cfg), "--seeds", "7", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "random 20% seed=7 finetune" in out and out.strip().endswith("1 runs")


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_work(tmp_path):
    """SIGKILL a real `unlearnbench run` half-way, rerun it, and check that
    the finished records were kept untouched and nothing is duplicated."""
    out = tmp_path / "out"
    args = [sys.executable, "-m", "unlearnbench.harness.cli", "run", "--out", str(out), "--seeds", "0,1",
            "--scenarios", "random", "--ratios", "0.1", "--methods", "original,retrain,finetune,random_relabel",
            "--no-leaderboard"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    runs = out / "runs"
    while time.time() < deadline and len(list(runs.glob("*.json")) if runs.exists() else []) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert 3 <= len(before) < 8
    assert not list(runs.glob(".*.tmp"))            # nothing half-written left as a record
    for p in runs.glob("*.json"):
        json.loads(p.read_text())                    # every record is complete JSON
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} already done" in done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert len(after) == 8
    assert all(after[name] == mtime for name, mtime in before.items())   # not redone
    statuses = [json.loads(p.read_text())["status"] for p in runs.glob("*.json")]
    assert statuses == ["ok"] * 8


def test_committed_leaderboard_matches_regeneration(tmp_path):
    """leaderboard.md and results/summary.csv in the repository are exactly
    what `unlearnbench leaderboard` produces from the committed records (run
    on a copy: the test writes nothing into the repository)."""
    import shutil

    from unlearnbench.harness.report.leaderboard import write_leaderboard

    assert (REPO / "results" / "runs").is_dir() and any((REPO / "results" / "runs").glob("*.json"))
    shutil.copytree(REPO / "results", tmp_path / "results", ignore=shutil.ignore_patterns("cache", "tuning"))
    if (REPO / "community").is_dir():
        shutil.copytree(REPO / "community", tmp_path / "community")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        csv, md = write_leaderboard(Path("results"), tmp_path / "leaderboard.md")
    finally:
        os.chdir(cwd)
    assert md.read_text() == (REPO / "leaderboard.md").read_text()
    assert (tmp_path / csv).read_text() == (REPO / "results" / "summary.csv").read_text()


def test_committed_results_cover_the_default_grid():
    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.records import RecordStore

    store = RecordStore(REPO / "results")
    missing = [s.describe() for s in expand(Grid()) if not store.is_done(s.key)]
    assert not missing, f"{len(missing)} default runs have no committed record, e.g. {missing[:3]}"


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("original", "retrain", "finetune", "gradient_ascent", "random_relabel", "digits", "fashion_mnist",
                 "mlp"):
        assert name in out


def test_default_preset_equals_builtin_defaults():
    from unlearnbench.harness.protocol.config import Grid, apply_mapping, expand, load_toml

    from_file = apply_mapping(Grid(), load_toml("default"), "default.toml")
    assert [s.key for s in expand(from_file)] == [s.key for s in expand(Grid())]


def test_cli_defaults_and_the_called_code_share_harness_defaults():
    """One torch-free module of defaults: the options the parser shows are the ones the code it calls uses."""
    import inspect

    from unlearnbench.harness import defaults as D
    from unlearnbench.harness.cli import build_parser
    from unlearnbench.harness.cluster.slurm import SlurmOptions
    from unlearnbench.harness.protocol.config import Grid
    from unlearnbench.harness.studies import exactness, forgetting_quality, per_example
    from unlearnbench.harness.tuning import tune

    commands = build_parser().commands
    parsed = {name: commands[name].parse_args(args) for name, args in
              {"tune": ["all"], "sweep": [], "exactness": [], "per-example": [], "forgetting-quality": []}.items()}
    assert parsed["tune"].trials == tune.DEFAULT_TRIALS == D.TUNE_TRIALS
    assert parsed["tune"].tune_seeds == ",".join(map(str, tune.DEFAULT_SEEDS))
    sweep, slurm = parsed["sweep"], SlurmOptions()
    for field in ("time_min", "array_parallelism", "signal_delay_s"):
        assert getattr(sweep, field) == getattr(slurm, field), field
    run_exactness = inspect.signature(exactness.run_exactness).parameters
    assert parsed["exactness"].features == run_exactness["features"].default == D.EXACTNESS_FEATURES
    assert parsed["exactness"].convergence_sigma == run_exactness["convergence_sigma"].default
    assert parsed["per-example"].shadows == per_example.DEFAULT_SHADOWS == D.SHADOWS
    assert parsed["per-example"].probe_shadows == per_example.PROBE_SHADOWS
    assert parsed["forgetting-quality"].num_models == forgetting_quality.DEFAULT_NUM_MODELS
    assert tuple(Grid().seeds) == D.SEEDS
