"""Datasets and models are pluggable like methods: ``@register_dataset`` /
``@register_model`` in code, and the entry-point groups ``unlearnbench.datasets``
/ ``unlearnbench.models`` for an installed package.  A throw-away plugin package,
installed the way pip leaves one (package folder + .dist-info), adds a dataset
and an architecture, and a tiny grid runs on them end to end."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import unlearnbench.datasets as D
from unlearnbench.harness.errors import UsageError
from unlearnbench.harness.models import get_model, list_models, register_model, unregister_model
from unlearnbench.harness.report.leaderboard import default_leaderboard_path
from unlearnbench.harness.tomlio import tomllib
from unlearnbench.methods import TrainConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin_package"


@pytest.fixture
def plugin_site(tmp_path):
    """examples/plugin_package installed the way pip leaves it: the package folder and a .dist-info whose
    entry_points.txt holds the entry points of the example's pyproject.toml (real importlib.metadata discovery)."""
    site = tmp_path / "site-packages"
    site.mkdir()
    shutil.copytree(EXAMPLE / "toy_unlearn_plugin", site / "toy_unlearn_plugin")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    info = site / f"toy_unlearn_plugin-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("\n".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for group, eps in project["entry-points"].items()))
    return site


def _cli(site, *args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "unlearnbench.harness.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_installed_dataset_and_model_plugins_run_a_grid(plugin_site, tmp_path):
    listing = _cli(plugin_site, "list")
    assert listing.returncode == 0, listing.stderr
    assert "toy_blobs" in listing.stdout and "tiny_net" in listing.stdout
    assert listing.stdout.count("(plugin toy-unlearn-plugin 0.1)") == 2

    out = tmp_path / "results"
    done = _cli(plugin_site, "run", "--datasets", "toy_blobs", "--models", "tiny_net", "--scenarios", "class",
                "--classes", "right", "--methods", "finetune,muso", "--seeds", "0", "--floor-retrains", "0",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    by_method = {r["config"]["method"]: r for r in records}
    assert {"finetune", "muso"} <= set(by_method) and all(r["status"] == "ok" for r in by_method.values())
    assert by_method["finetune"]["config"]["dataset"] == "toy_blobs"
    assert by_method["finetune"]["config"]["model"] == "tiny_net"
    for r in by_method.values():      # every metric computed on the plugin's data and architecture
        assert all(r["metrics"][m] == r["metrics"][m] for m in ("retain_acc", "forget_acc", "test_acc", "avg_gap"))
    assert by_method["finetune"]["metrics"]["test_acc_forget_class"] <= 100
    board = default_leaderboard_path(out).read_text()
    assert "toy_blobs" in board and "tiny_net" in board


def test_unknown_names_list_the_plugins_too(plugin_site):
    done = _cli(plugin_site, "run", "--datasets", "toy_blob", "--dry-run")
    assert done.returncode == 2 and "unknown dataset 'toy_blob'" in done.stderr and "toy_blobs" in done.stderr


def test_broken_dataset_plugin_is_named(tmp_path):
    site = tmp_path / "site"
    info = site / "broken_data_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-data-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[unlearnbench.datasets]\nbroken = broken_data_plugin_missing\n")
    done = _cli(site, "list")
    assert done.returncode == 2
    assert "dataset plugin (broken = 'broken_data_plugin_missing' from broken-data-plugin 0.1) failed to import: " \
           "ModuleNotFoundError" in done.stderr


def test_register_dataset_in_code_and_its_checks():
    @D.register_dataset("two_points", class_names=("a", "b"), summary="two points")
    def load(root=None, download=False):
        x = torch.zeros(4, 1, 1, 1)
        return D.Dataset(name="two_points", x_train=x, y_train=torch.tensor([0, 1, 0, 1]), x_test=x,
                         y_test=torch.tensor([0, 1, 0, 1]), class_names=("a", "b"), scale=1.0)

    try:
        assert "two_points" in D.list_datasets() and D.num_classes("two_points") == 2
        assert D.class_names("two_points") == ("a", "b") and D.dataset_origin("two_points") == __name__
        assert D.load_dataset("two_points").num_classes == 2
        with pytest.raises(ValueError, match="built-in"):
            D.register_dataset("digits", class_names=("a", "b"), summary="")
        with pytest.raises(ValueError, match="at least 2 classes"):
            D.register_dataset("one", class_names=("a",), summary="")

        @D.register_dataset("mislabelled", class_names=("a", "b", "c"), summary="")
        def bad(root=None, download=False):
            return load()

        with pytest.raises(D.DataError, match="differ from the registered"):
            D.load_dataset("mislabelled")
    finally:
        D.unregister_dataset("two_points")
        D.unregister_dataset("mislabelled")
    with pytest.raises(D.UnknownName, match="unknown dataset 'two_points'"):
        D.get_dataset("two_points")


def test_register_model_refuses_a_taken_name():
    @register_model("probe_net", train=TrainConfig(epochs=1), summary="probe")
    def probe_net(spec):
        raise NotImplementedError

    try:
        assert "probe_net" in list_models() and get_model("probe_net").summary == "probe"
        with pytest.raises(ValueError, match="already registered"):
            register_model("mlp", train=TrainConfig(), summary="")(probe_net)
    finally:
        unregister_model("probe_net")
    with pytest.raises(UsageError, match="unknown model 'probe_net'"):
        get_model("probe_net")
