"""Every bad input exits with status 2 and ONE line that names the value and
what is accepted, writing nothing: argparse's own errors, unknown choices,
hyperparameters outside their declared bounds, training and executor options,
results folders that do not exist, data that cannot hold the request."""

import pytest

from unlearnbench.harness.cli import main

CASES = [
    # argparse: types, choices, missing values, unknown options and commands
    (["run", "--val-frac", "abc"], "argument --val-frac: invalid float value: 'abc' (see unlearnbench run --help)"),
    (["run", "--seeds"], "argument --seeds: expected one argument (see unlearnbench run --help)"),
    (["run", "--executor", "pbs"], "argument --executor: invalid choice: 'pbs' (choose from 'local', 'slurm')"),
    (["run", "--bogus"], "unrecognized arguments: --bogus (see unlearnbench run --help)"),
    (["list", "extra"], "unrecognized arguments: extra (see unlearnbench list --help)"),
    (["frobnicate"],
     "argument COMMAND: invalid choice: 'frobnicate' (choose from 'run', 'reproduce', 'sweep', 'status',"),
    (["sweep", "--time", "ten"], "argument --time: invalid int value: 'ten' (see unlearnbench sweep --help)"),
    (["tune"], "the following arguments are required: METHOD (see unlearnbench tune --help)"),
    (["tune", "finetune", "--trials", "many"], "argument --trials: invalid int value: 'many'"),
    (["forgetting-quality", "--num-models", "x"], "argument --num-models: invalid int value: 'x'"),
    (["exactness", "--sigma", "wide"], "argument --sigma: invalid float value: 'wide'"),
    # hyperparameters outside their declared bounds (methods' Hyper fields, `bounded`), end to end
    (["run", "--method-arg", "scrub.epochs=-3"], "scrub.epochs=-3 is out of range; accepted: >= 1"),
    (["run", "--method-arg", "finetune.lr=0"], "finetune.lr=0.0 is out of range; accepted: > 0"),
    (["run", "--method-arg", "bad_teacher.retain_share=1.5"],
     "bad_teacher.retain_share=1.5 is out of range; accepted: >= 0 and <= 1"),
    (["run", "--method-arg", "muso.optimizer=rmsprop"],
     "muso.optimizer='rmsprop' is out of range; accepted: one of 'sgd', 'adam', 'adamw'"),
    (["run", "--method-arg", "finetune.epochs=2.5"], "finetune.epochs='2.5' is not a valid int"),
    (["run", "--method-arg", "scrub=3"], "--method-arg 'scrub=3': expected NAME.KEY=VALUE"),
    (["tune", "finetune", "--trials", "0"], "--trials 0 is not a positive integer"),
    # the reference training
    (["run", "--train-arg", "epochs=-1"], "train: need epochs >= 0, batch_size >= 1, lr >= 0 (got -1,"),
    (["run", "--train-arg", "optimizer=rmsprop"], "train: unknown optimizer 'rmsprop'; accepted: sgd, adam, adamw"),
    (["run", "--train-arg", "epochs"], "--train-arg expects KEY=VALUE"),
    # executor options, checked for local runs too
    (["run", "--cpus-per-task", "0"], "--cpus-per-task 0: accepted: a positive integer"),
    (["run", "--mem-gb", "0"], "--mem-gb 0: accepted: a positive number of GB"),
    (["run", "--gpus-per-task", "-1"], "--gpus-per-task -1: accepted: 0 or more"),
    (["sweep", "--executor", "local", "--runs-per-task", "-1"], "--runs-per-task -1: accepted: 0 (one task per"),
    (["sweep", "--executor", "local", "--time", "1"], "--time 1: need at least 2 minutes"),
    (["sweep", "--executor", "local", "--sbatch", "account"], "--sbatch 'account': expected KEY=VALUE"),
    # results folders that do not exist (or hold nothing to aggregate)
    (["leaderboard", "--out", "missing"], "--out 'missing' does not exist; accepted: a results folder written by"),
    (["status", "--out", "missing"], "--out 'missing' does not exist; accepted: a results folder written by"),
    (["plot", "--out", "missing"], "--out 'missing' does not exist; accepted: a results folder written by"),
    (["status", "--out", "afile"], "--out 'afile' is a file, not a folder; accepted: a results folder"),
    (["leaderboard", "--out", "empty"], "--out 'empty' holds no run records (runs/*.json,"),
    (["plot", "--out", "empty"], "--out 'empty' holds no run records (runs/*.json,"),
    # data that cannot hold the request, other commands' own checks
    (["run", "--methods", "original", "--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
      "--test-subset", "999999"], "test_subset 999999 exceeds the 449 images of 'digits'"),
    (["forgetting-quality", "--num-models", "2"], "--num-models 2 is too small; accepted: an integer >= 3"),
    (["exactness", "--features", "3"], "--features 3 must be an even number >= 2"),
    (["submit"], "give the submission either as a file"),
    (["submit", "missing.py"], "submission file 'missing.py' not found"),
]


@pytest.mark.parametrize("argv, needle", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("not a folder\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("unlearnbench: error: ") and captured.err.count("\n") == 1, captured.err
    assert needle in captured.err
    assert captured.out == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before     # nothing written


def test_help_is_not_an_error(capsys):
    assert main(["run", "--help"]) == 0
    assert "usage: unlearnbench run" in capsys.readouterr().out
