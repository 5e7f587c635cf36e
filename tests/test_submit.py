"""`unlearnbench submit` and the public method API: methods from a file, a
module and an installed plugin (entry point) are discovered, run, ranked and
filed; every invalid submission is refused with its reason and leaves no record."""
import functools
import gc
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from unlearnbench.harness.cli import main
from unlearnbench.methods import list_methods, unregister_method

REPO = Path(__file__).resolve().parents[1]
# One table (random 10%, seed 0) of the default protocol: small enough to run many submissions.
TINY = ('datasets = ["digits"]\nmodels = ["mlp"]\nscenarios = ["random"]\nratios = [0.1]\nseeds = [0]\n'
        'methods = ["all"]\n')

METHOD_FILE = '''
"""Fine-tune the original on the retain set for a few epochs (a test submission)."""
from dataclasses import dataclass

from unlearnbench.methods import Context, cross_entropy, fit, register_method


@dataclass
class Hyper:
    epochs: int = 2
    lr: float = 0.05


@register_method("{name}", hyper=Hyper)
def short_finetune(ctx: Context, hp: Hyper):
    """Short fine-tuning on D_r (test submission)."""
    config = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr)
    fit(ctx.model, cross_entropy, ctx.retain.tensors, config, ctx.generator,
        after_epoch=lambda epoch, _: ctx.progress((epoch + 1) / hp.epochs))
    return ctx.model
'''


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A preset file, a shared reference-model cache and a shared results folder."""
    root = tmp_path_factory.mktemp("bench")
    (root / "tiny.toml").write_text(TINY)
    return root


def submit(bench, *args, out=None, leaderboard=False):
    out = out or bench / "results"
    return main(["submit", *args, "--preset", str(bench / "tiny.toml"), "--out", str(out),
                 "--cache-dir", str(bench / "cache"), *([] if leaderboard else ["--no-leaderboard"])])


def records_of(out: Path, method: str) -> list[dict]:
    runs = sorted((out / "runs").glob("*.json")) if (out / "runs").is_dir() else []
    return [r for r in map(lambda p: json.loads(p.read_text()), runs) if r["config"]["method"] == method]


def accepted(bench, name: str, capsys) -> str:
    """The submission ``name`` was ranked and recorded; returns its community README."""
    assert f"{name} rank " in capsys.readouterr().out
    [record] = records_of(bench / "results", name)
    assert record["status"] == "ok" and record["submission"]["name"] == name
    return (bench / "community" / name / "README.md").read_text()


def write_method(folder: Path, name: str, filename: str = None) -> Path:
    path = folder / (filename or f"{name}_method.py")
    path.write_text(METHOD_FILE.format(name=name))
    return path


@pytest.mark.slow
def test_method_in_a_temporary_file_is_run_ranked_and_filed(bench, tmp_path, capsys, monkeypatch):
    path = write_method(tmp_path, "tmp_file_method")
    assert submit(bench, str(path), leaderboard=True) == 0
    out = capsys.readouterr().out
    registered = [m for m in list_methods() if m not in ("original", "retrain")]
    assert "digits · mlp · random 10%: tmp_file_method rank " in out and f" of {len(registered) + 1} by Avg. Gap" in out
    assert any(line.startswith("→") and "tmp_file_method" in line for line in out.splitlines())
    assert "overall: tmp_file_method is #" in out
    results = bench / "results"
    [record] = records_of(results, "tmp_file_method")
    assert record["status"] == "ok" and record["submission"]["name"] == "tmp_file_method"
    assert record["config"]["hyper"] == {"epochs": 2, "lr": 0.05}
    for baseline in list_methods():
        assert len(records_of(results, baseline)) == 1, baseline  # ranked beside every registered method
    assert "tmp_file_method" not in list_methods()              # unloaded after the command

    folder = bench / "community" / "tmp_file_method"
    readme = (folder / "README.md").read_text()
    assert (folder / path.name).read_text() == path.read_text()
    assert "| `epochs` | `2` |" in readme and "[method_args.tmp_file_method]" in readme
    command = readme.split("```bash\n")[1].split("\n")[0]
    assert command.startswith(f"unlearnbench submit community/tmp_file_method/{path.name} --preset ")

    leaderboard = (bench / "leaderboard.md").read_text()
    assert "[tmp_file_method](community/tmp_file_method/README.md)" in leaderboard
    assert "## Overall ranking" in leaderboard and "![Forget vs test accuracy](results/figures/" in leaderboard
    assert (results / "figures" / "tradeoff_forget_vs_test.png").is_file()

    # the README's command reproduces the rows (here: finds them recorded) from the folder it names
    monkeypatch.chdir(bench)
    assert main(shlex.split(command)[1:] + ["--no-leaderboard"]) == 0
    assert "(1 reused from earlier records)" in capsys.readouterr().err
    assert len(records_of(results, "tmp_file_method")) == 1


def test_method_from_a_module_is_submitted(bench, tmp_path, capsys, monkeypatch):
    write_method(tmp_path, "module_method", filename="my_unlearning_module.py")
    monkeypatch.chdir(tmp_path)                                  # importable from the current folder
    assert submit(bench, "--method", "my_unlearning_module:short_finetune") == 0
    readme = accepted(bench, "module_method", capsys)
    assert "unlearnbench submit --method my_unlearning_module:short_finetune --preset" in readme
    assert "module_method" not in list_methods()


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A package installed the way pip leaves one: the package folder and its
    .dist-info with entry_points.txt, on sys.path (real importlib.metadata discovery)."""
    site = tmp_path / "site-packages"
    package = site / "unlearn_plugin_example"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(METHOD_FILE.format(name="plugin_method"))
    info = site / "unlearn_plugin_example-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unlearn-plugin-example\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[unlearnbench.methods]\nplugin_method = unlearn_plugin_example\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    unregister_method("plugin_method")
    sys.modules.pop("unlearn_plugin_example", None)


def test_installed_plugin_is_discovered_run_and_ranked(bench, installed_plugin, capsys):
    listing = subprocess.run([sys.executable, "-m", "unlearnbench.harness.cli", "list"], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(installed_plugin)}, timeout=300)
    assert listing.returncode == 0, listing.stderr
    assert "plugin_method" in listing.stdout and "(plugin unlearn-plugin-example 1.2)" in listing.stdout

    assert "plugin_method" in list_methods()                     # discovered in this process too
    assert submit(bench, "--method", "plugin_method") == 0
    assert "unlearnbench submit --method plugin_method" in accepted(bench, "plugin_method", capsys)


def test_broken_plugin_is_named(tmp_path):
    site = tmp_path / "site"
    (site / "broken_unlearn_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "broken_unlearn_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-unlearn-plugin\nVersion: 0.1\n")
    (site / "broken_unlearn_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[unlearnbench.methods]\nbroken = broken_unlearn_plugin_missing\n")
    done = subprocess.run([sys.executable, "-m", "unlearnbench.harness.cli", "list"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(site)}, timeout=300)
    assert done.returncode == 2
    assert "method plugin (broken = 'broken_unlearn_plugin_missing' from broken-unlearn-plugin 0.1) " \
           "failed to import: " \
           "ModuleNotFoundError" in done.stderr


def test_the_documented_example_is_submitted(bench, capsys):
    assert submit(bench, str(REPO / "examples" / "eu_head.py")) == 0
    accepted(bench, "eu_head", capsys)
    [record] = records_of(bench / "results", "eu_head")
    [original] = records_of(bench / "results", "original")
    # the head was relearned: the model moved away from the original
    assert record["metrics"]["param_dist"] != pytest.approx(original["metrics"]["param_dist"])


INVALID = {
    "modifies_original": ("""
        import torch
        @register_method("{name}")
        def method(ctx, hp):
            with torch.no_grad():
                next(ctx.original.parameters()).add_(1.0)
            return ctx.model
        """, "modified the original model in place"),
    "other_architecture": ("""
        import torch
        @register_method("{name}")
        def method(ctx, hp):
            return torch.nn.Linear(64, ctx.num_classes)
        """, "returned Linear, expected a MLP"),
    "nan_weights": ("""
        import torch
        @register_method("{name}")
        def method(ctx, hp):
            with torch.no_grad():
                ctx.model.head.weight.fill_(float("nan"))
            return ctx.model
        """, "non-finite weights or loss: parameter head.weight is not finite"),
    "loads_the_dataset": ("""
        from unlearnbench.datasets import load_dataset
        @register_method("{name}")
        def method(ctx, hp):
            try:                                   # swallowing the refusal does not help
                load_dataset("digits").x_test
            except Exception:
                pass
            return ctx.model
        """, "loaded the dataset 'digits' while unlearning"),
    "reads_the_data_files": ("""
        @register_method("{name}")
        def method(ctx, hp):
            from sklearn.datasets import load_digits
            load_digits()
            return ctx.model
        """, "digits.csv.gz, a file of the benchmark's data,"),
    "reads_the_retrain_model": ("""
        import glob, torch
        @register_method("{name}")
        def method(ctx, hp):
            for path in glob.glob("{cache}/retrain/*/model.pt"):
                ctx.model.load_state_dict(torch.load(path, weights_only=True))
            return ctx.model
        """, "a cached reference model,"),
    "walks_the_heap": ("""
        import gc
        @register_method("{name}")
        def method(ctx, hp):
            gc.get_objects()
            return ctx.model
        """, "called gc.get_objects()"),
    "crashes": ("""
        @register_method("{name}")
        def method(ctx, hp):
            raise ValueError("boom")
        """, "ValueError: boom"),
    "syntax_error": ("""
        @register_method("{name}")
        def method(ctx, hp) return ctx.model
        """, "SyntaxError: expected ':' (line 4)"),
    "import_fails": ("""
        import a_package_that_is_not_installed
        """, "line 3: ModuleNotFoundError: No module named 'a_package_that_is_not_installed'"),
    "registers_nothing": ("""
        def method(ctx, hp):
            return ctx.model
        """, "registers no method; decorate the method's function with @register_method"),
    "claims_to_be_retrain": ("""
        @register_method("{name}", reference="retrain")
        def method(ctx, hp):
            return ctx.model
        """, "declares reference='retrain'; only the harness's own Original and Retrain rows are references"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_submission_is_refused_and_leaves_no_record(bench, tmp_path, capsys, case):
    body, needle = INVALID[case]
    name = f"bad_{case}"
    source = "from unlearnbench.methods import register_method\n" + textwrap.dedent(body).format(
        name=name, cache=bench / "cache")
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    out = tmp_path / "results"
    assert submit(bench, str(path), out=out) == 2
    err = capsys.readouterr().err
    assert needle in err.strip().splitlines()[-1]
    assert err.strip().splitlines()[-1].startswith("unlearnbench: error: ")
    assert not records_of(out, name)
    assert not (tmp_path / "community").exists()
    assert name not in list_methods()                            # nothing left registered either


@pytest.mark.parametrize("args, needle", [
    (["--method", "finetune"], "'finetune' is one of unlearnbench's own methods"),
    (["--method", "no_such_module:method"], "cannot import module 'no_such_module': ModuleNotFoundError"),
    (["--method", "nope"], "unknown method 'nope'; accepted: original, retrain"),
    (["/nonexistent/method.py"], "submission file '/nonexistent/method.py' not found"),
    ([], "give the submission either as a file"),
])
def test_bad_submission_arguments(bench, tmp_path, capsys, args, needle):
    assert submit(bench, *args, out=tmp_path / "results") == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_submission_may_set_only_its_own_hyperparameters(bench, tmp_path, capsys):
    path = write_method(tmp_path, "own_args_method")
    code = main(["submit", str(path), "--preset", str(bench / "tiny.toml"), "--out", str(tmp_path / "results"),
                 "--method-arg", "finetune.lr=1"])
    assert code == 2 and "a submission may set only its own hyperparameters" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_context_leads_nowhere_near_the_test_data(bench):
    """Walk everything reachable from a method's Context (not through module
    globals): no harness, and no tensor sharing memory with the test split."""
    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.runner import Harness

    harness = Harness(out=bench / "ctx", cache_dir=bench / "cache")
    spec = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"]))[0]
    refs = harness.references(spec)
    split = harness.splits(spec)
    ctx = harness.context(spec, refs.original, refs.theta0, split, torch.Generator())
    test_storage = {split["test"].x.untyped_storage().data_ptr(), split["test"].y.untyped_storage().data_ptr()}
    seen, todo = set(), [ctx]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, type(sys))) or (isinstance(obj, dict) and "__builtins__" in obj):
            continue
        seen.add(id(obj))
        assert not isinstance(obj, Harness)
        if isinstance(obj, torch.Tensor):
            assert obj.untyped_storage().data_ptr() not in test_storage
        todo.extend(gc.get_referents(obj))
    assert isinstance(ctx.make_model, functools.partial) and len(seen) > 50


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not a docstring."""
    import ast
    import io
    import tokenize

    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            docstrings.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docstrings)


def test_the_guide_shows_the_example_verbatim_and_counts_its_lines():
    guide = (REPO / "docs" / "adding-a-method.md").read_text()
    example = (REPO / "examples" / "eu_head.py").read_text()
    assert f"```python\n{example}```" in guide
    assert f"**{code_lines(example)} lines of code** ({len(example.splitlines())} with" in guide
    assert "@@" not in guide                                     # no placeholder left
    assert f"a\n{code_lines(example)}-line EU-k method" in (REPO / "README.md").read_text()


def _reports_progress(ctx, hp):
    ctx.progress(0.5, "halfway")
    return ctx.model


def test_method_progress_reaches_the_progress_bar(bench):
    import io

    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.progress import Progress
    from unlearnbench.harness.protocol.runner import Harness
    from unlearnbench.methods import register_method

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    register_method("progress_for_test")(_reports_progress)
    try:
        terminal = Terminal()
        progress = Progress(1, stream=terminal)
        harness = Harness(out=bench / "progress", cache_dir=bench / "cache", method_progress=progress.step)
        [spec] = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["progress_for_test"]))
        progress.begin(spec.describe())
        assert harness.run(spec)["status"] == "ok"
        assert f"{spec.describe()}  50% halfway" in terminal.getvalue()
        assert "[############............] 0/1" in terminal.getvalue()    # the bar is half full
    finally:
        unregister_method("progress_for_test")
