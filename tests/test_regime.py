"""MUSO's regime study (issue 12): model arguments as grid axes, table titles
that tell settings apart, M/N beside MUSO's rows, the random-Fourier-feature
MLP, and the "MUSO's regime" section and figures — from tiny real runs and
from synthetic records whose verdicts are known."""
import json

import pytest
import torch

from unlearnbench.harness.cli import build_parser, main
from unlearnbench.harness.errors import UsageError
from unlearnbench.harness.models import InputSpec, build_model
from unlearnbench.harness.protocol.config import Grid, apply_mapping, expand, grid_from_args
from unlearnbench.harness.protocol.records import RecordStore
from unlearnbench.harness.report import leaderboard as L
from unlearnbench.harness.report.figure_plan import plan_figures

SPEC = InputSpec((1, 8, 8), 10, 16.0, (0.3,), (0.38,))


def grid_of(*argv) -> Grid:
    return grid_from_args(build_parser().parse_args(["run", *argv]))


# ---- model arguments as grid axes ---------------------------------------------------------
def test_model_args_option_makes_one_run_per_value_each_with_its_own_identity():
    specs = expand(grid_of("--models", "mlp", "--model-args", "hidden=128,512,2048", "--methods", "original",
                           "--seeds", "0", "--scenarios", "random", "--ratios", "0.1"))
    assert [s.model_args for s in specs] == [{"hidden": 128}, {"hidden": 512}, {"hidden": 2048}]
    assert len({s.key for s in specs}) == 3 and len({json.dumps(s.original_identity()) for s in specs}) == 3
    assert specs[1].describe() == "digits/mlp(hidden=512) random 10% seed=0 original"
    # MODEL.KEY targets one model; NxM is a list value (two layers); several axes form a product
    specs = expand(grid_of("--models", "mlp", "--model-args", "mlp.hidden=16x16,32", "--model-args",
                           "activation=relu", "--methods", "original", "--seeds", "0", "--scenarios", "class"))
    assert [s.model_args for s in specs] == [{"hidden": [16, 16], "activation": "relu"},
                                             {"hidden": 32, "activation": "relu"}]


def test_toml_model_grid_gives_grid_values_and_overrides_a_fixed_argument(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('models = ["mlp", "cnn"]\ndatasets = ["fashion_mnist"]\nmethods = ["original"]\n'
                      'seeds = [0]\nscenarios = ["class"]\n'
                      '[model_args.mlp]\nhidden = [128, 128]\nactivation = "relu"\n'
                      '[model_grid.mlp]\nhidden = [64, [32, 32]]\n[model_grid.cnn]\nhidden = [16, 64]\n')
    specs = expand(grid_of("--config", str(preset)))
    assert [(s.model, s.model_args) for s in specs] == [
        ("mlp", {"activation": "relu", "hidden": 64}), ("mlp", {"activation": "relu", "hidden": [32, 32]}),
        ("cnn", {"hidden": 16}), ("cnn", {"hidden": 64})]


@pytest.mark.parametrize("argv, message", [
    (["--model-args", "width=128"], "model 'mlp' does not accept argument 'width'; accepted: hidden, activation, "
                                    "bandwidth"),
    (["--models", "resnet18", "--model-args", "hidden=64"], "model 'resnet18' does not accept argument 'hidden'; "
                                                            "accepted: (none)"),
    (["--model-args", "hidden="], "--model-args 'hidden=': expected [MODEL.]KEY=VALUE[,VALUE...]"),
    (["--model-args", "cnn.channel=8x8"], "model 'cnn' does not accept argument 'channel'; accepted: channels, "
                                          "hidden"),
])
def test_a_bad_model_argument_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(["run", "--dry-run", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())


def test_model_grid_values_must_be_a_list():
    with pytest.raises(UsageError, match=r"model_grid.mlp.hidden must be a non-empty list of grid values"):
        apply_mapping(Grid(), {"model_grid": {"mlp": {"hidden": 128}}}, "config file 'x.toml'")


def test_a_bad_model_argument_value_names_the_model():
    with pytest.raises(UsageError, match=r"model 'mlp'.*activation='tanh'; accepted: relu, cos"):
        build_model("mlp", SPEC, {"hidden": 8, "activation": "tanh"})
    with pytest.raises(UsageError, match="needs a bandwidth > 0"):
        build_model("mlp", SPEC, {"hidden": 8, "activation": "cos"})
    with pytest.raises(UsageError, match="needs one hidden layer"):
        build_model("mlp", SPEC, {"hidden": [8, 8], "activation": "cos", "bandwidth": 1.0})


def test_mlp_with_one_width_and_the_random_fourier_feature_layer():
    assert [m.out_features for m in build_model("mlp", SPEC, {"hidden": 300}).modules()
            if isinstance(m, torch.nn.Linear)] == [300, 10]
    # cos features: inner products ≈ width/2 · exp(−‖x − x'‖² / 2σ²) (random Fourier features)
    torch.manual_seed(0)
    width, sigma = 40_000, 3.0
    net = build_model("mlp", SPEC, {"hidden": width, "activation": "cos", "bandwidth": sigma})
    x = torch.randint(0, 17, (4, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        z = net.features(x).double()
        inputs = net.normalize(x).flatten(1).double()
    kernel = width / 2 * torch.exp(-torch.cdist(inputs, inputs) ** 2 / (2 * sigma ** 2))
    assert torch.allclose(z @ z.T, kernel, atol=0.02 * width / 2)


# ---- titles and M/N from records ----------------------------------------------------------
def record(method, seed=0, *, model_args=None, loss=None, trainable=None, epochs=30, kind="random", metrics=None,
           diagnostics=None, head_inputs=129, n_retain=1092, floor=None):
    train = {"epochs": epochs, "lr": 0.05}
    if loss:
        train["loss"] = loss
    if trainable:
        train["trainable"] = trainable
    scenario = {"kind": "random", "ratio": 0.1} if kind == "random" else {"kind": "class", "forget_class": 0}
    config = {"dataset": "digits", "model": "mlp", "model_args": model_args or {}, "scenario": scenario,
              "method": method, "hyper": {}, "seed": seed, "train": train, "val_frac": 0.1}
    base = {"retain_acc": 99.0, "forget_acc": 98.0, "test_acc": 97.0, "unlearn_acc": 2.0, "mia_efficacy": 10.0,
            "mia_entropy": 50.0, "param_dist": 1.0, "param_dist_rel": 0.1, "param_dist_floor_ratio": 2.0,
            "js_forget": 0.01, "avg_gap": 1.0, "avg_gap_muso": 1.0, "time_s": 1.0, "rte": 2.0}
    r = {"key": f"{method}-{seed}-{json.dumps(model_args)}-{loss}-{trainable}-{epochs}-{kind}", "config": config,
         "status": "ok", "metrics": {**base, **(metrics or {})},
         "sizes": {"retain": n_retain, "forget": 121, "test": 449},
         "model_size": {"parameters": 10 * head_inputs, "head_inputs": head_inputs},
         "reference": {"floor": {"order": {"param_dist": floor}} if floor else None}}
    if diagnostics:
        r["diagnostics"] = diagnostics
    return r


def test_titles_tell_settings_apart_and_default_titles_stay():
    records = [record("original"), record("original", model_args={"hidden": 2048}, loss="squared",
                                            trainable="head"),
               record("original", model_args={"hidden": [128, 128]}, epochs=10),
               record("original", model_args={"hidden": [128, 128]}, epochs=100)]
    summary = L.summarize(L.records_frame(records))
    titles = [L.table_label(r) for _, r in summary.iterrows()]
    assert titles == ["digits · mlp · random 10%",
                      "digits · mlp(hidden=128x128) · epochs=10 · random 10%",
                      "digits · mlp(hidden=128x128) · epochs=100 · random 10%",
                      "digits · mlp(hidden=2048) · squared · head-only · random 10%"]


def test_a_ratio_figure_per_setting_with_two_ratios():

    records = []
    for ratio in (0.1, 0.5):
        for args in ({}, {"hidden": 2048}):
            r = record("original", model_args=args)
            r["config"]["scenario"]["ratio"], r["key"] = ratio, f"{r['key']}-{ratio}"
            records.append(r)
    records.append(record("original", model_args={"hidden": 64}))   # one ratio only: no figure
    names = [p.name for p in plan_figures(L.summarize(L.records_frame(records))) if p.kind == "ratio"]
    assert names == ["metrics_vs_ratio_digits_mlp.png", "metrics_vs_ratio_digits-mlp-hidden-2048.png"]


def test_m_over_n_beside_the_rows_that_report_it():
    diag = {"head_inputs": 129, "proj_rows": 219, "label_change_first": 0.0}
    records = [record("original"), record("retrain", metrics={"param_dist": 0.0}),
               record("muso", diagnostics=diag), record("muso", seed=1, diagnostics={**diag, "proj_rows": 221}),
               record("finetune")]
    df = L.records_frame(records)
    text = L.table_markdown(L.summarize(df), df)
    assert "| muso · M/N = 129/219–221 (0.589) |" in text
    assert "finetune ·" not in text and "original** ·" not in text


# ---- the regime section and figures --------------------------------------------------------
WIDTHS = (64, 512, 4096)


def sweep_records():
    """A width sweep (all layers trained) and a bridge (head-only), two seeds.
    MUSO: not competitive at 64 (gap 9 vs 1), competitive at 512, exact at 4096
    (distance ratio 200 on both seeds); labels first change at 512."""
    out = []
    for width in WIDTHS:
        m = {"hidden": width}
        for seed in (0, 1):
            h = width + 1
            out.append(record("original", seed, model_args=m, head_inputs=h,
                              metrics={"param_dist": 2.0, "avg_gap": 5.0, "param_dist_floor_ratio": 3.0}))
            out.append(record("retrain", seed, model_args=m, head_inputs=h,
                              metrics={"param_dist": 0.0, "param_dist_rel": 0.0, "avg_gap": 0.0,
                                       "param_dist_floor_ratio": 1.0}))
            out.append(record("finetune", seed, model_args=m, head_inputs=h, metrics={"avg_gap": 1.0 + 0.2 * seed}))
            gap = {64: 9.0, 512: 1.2, 4096: 0.5}[width]
            dist = 0.01 if width == 4096 else 1.5
            out.append(record("muso", seed, model_args=m, head_inputs=h,
                              metrics={"avg_gap": gap, "param_dist": dist, "param_dist_rel": dist / 10,
                                       "param_dist_floor_ratio": dist},
                              diagnostics={"head_inputs": h, "proj_rows": 1092,
                                           "label_change_first": 0.0 if width == 64 else 0.05}))
    for seed in (0, 1):   # the bridge: MUSO 150x closer than the Original
        b = dict(model_args={"hidden": 4096, "activation": "cos", "bandwidth": 2.5}, loss="squared",
                 trainable="head", head_inputs=4097, floor=0.003)
        out.append(record("original", seed, **b, metrics={"param_dist": 3.0}))
        out.append(record("retrain", seed, **b, metrics={"param_dist": 0.0, "param_dist_floor_ratio": 0.01}))
        out.append(record("muso", seed, **b, metrics={"param_dist": 0.02}))
        out.append(record("finetune", seed, **b, metrics={"param_dist": 3.0}))
    return out


@pytest.fixture()
def study(tmp_path):
    store = RecordStore(tmp_path / "results" / "regime")
    for r in sweep_records():
        store.write(r)
    return tmp_path / "results"


def test_regime_section_states_the_verdicts_from_the_numbers(study):
    from unlearnbench.harness.studies.regime import leaderboard_section

    text = leaderboard_section(study)   # the main folder: the section reads results/regime
    assert "`" + (study / "regime").as_posix() + "/`" in text
    bridge = next(line for line in text.splitlines() if line.startswith("| digits · mlp(activation=cos"))
    assert "| muso | 150 (150) | met | finetune: 1 | 0.001 | 97 / 97 | 2 |" in bridge
    said = next(line for line in text.splitlines() if line.startswith("- random 10%, muso:"))
    assert ("exact at hidden=4096 (M/N 3.8); competitive at hidden=512 (M/N 0.47); not at hidden=64 (M/N 0.06)"
            in said), said
    assert "first differ from the Original's predictions at hidden=512 (M/N 0.47): 5.0% of D_f" in said
    assert "](results/regime/figures/regime_distance_digits_mlp.png)" in text
    # the study's own leaderboard links its own figures, and the main one carries the section
    assert "](figures/regime_gap_digits_mlp.png)" in leaderboard_section(study / "regime")
    _, md = L.write_leaderboard(study, study / "lb.md")
    assert "## MUSO's regime: where exact unlearning holds in networks" in md.read_text()
    assert leaderboard_section(study / "elsewhere") is None


def test_regime_figures_one_line_per_method_against_m_over_n(study, capsys):
    import re

    from unlearnbench.harness.studies import all_figure_plans

    folder = study / "regime"
    plans = {p.name: p for p in all_figure_plans(L.load_summary(folder)[1])}
    assert plans["regime_distance_digits_mlp.png"].panels == 2 and plans["regime_gap_digits_mlp.png"].panels == 1
    assert not any(name.startswith("metrics_vs_ratio") for name in plans)   # one forget ratio: no such figure
    assert main(["plot", "--out", str(folder)]) == 0
    printed = dict(re.findall(r"wrote .*/figures/(\S+\.png) \((\d+) panels\)", capsys.readouterr().out))
    assert printed["regime_distance_digits_mlp.png"] == "2" and printed["regime_gap_digits_mlp.png"] == "1"
    assert (folder / "figures" / "regime_gap_digits_mlp.png").read_bytes()[:4] == b"\x89PNG"


def test_tiny_real_width_grid_records_head_inputs_and_titles(tmp_path):
    """Real runs: two widths, their records, M and the tables."""
    out = tmp_path / "r"
    assert main(["run", "--models", "mlp", "--model-args", "hidden=8,24", "--methods", "original,retrain",
                 "--seeds", "0", "--scenarios", "random", "--ratios", "0.1", "--floor-retrains", "0",
                 "--train-arg", "epochs=2", "--out", str(out), "--no-leaderboard"]) == 0
    records = RecordStore(out).all()
    assert sorted((r["config"]["model_args"]["hidden"], r["model_size"]["head_inputs"],
                   r["model_size"]["parameters"]) for r in records) == \
        [(8, 9, 610), (8, 9, 610), (24, 25, 1810), (24, 25, 1810)]   # 64·h + h + 10·h + 10
    _, summary = L.load_summary(out)
    assert sorted(set(L.table_label(r) for _, r in summary.iterrows())) == [
        "digits · mlp(hidden=24) · random 10%", "digits · mlp(hidden=8) · random 10%"]
