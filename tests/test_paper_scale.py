"""Paper-scale pieces on tiny data: the CNN and CIFAR ResNet-18, batch-wise
augmentation, training subsets, sub-class forgetting, class names, precision
and determinism settings, and ResNet-18 through the whole protocol."""
import numpy as np
import pytest
import torch
from data_formats import accept_checksums, write_cifar10, write_cifar100

from unlearnbench.datasets import splits as S
from unlearnbench.harness.errors import UsageError
from unlearnbench.harness.models import InputSpec, build_model
from unlearnbench.harness.protocol import augment as A
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness
from unlearnbench.harness.protocol.spec import RunSpec


# ---- models ----------------------------------------------------------------
@pytest.mark.parametrize("name, shape, width", [("cnn", (1, 28, 28), 128), ("cnn", (3, 32, 32), 128),
                                                ("resnet18", (3, 32, 32), 512)])
def test_conv_models_expose_features_and_head(name, shape, width):
    torch.manual_seed(0)
    model = build_model(name, InputSpec(shape, 7, 255.0, (0.5,), (0.25,))).eval()
    x = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
    with torch.no_grad():
        feats = model.features(x)
        assert feats.shape == (3, width)
        assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == 7
        assert torch.allclose(model(x), model.head(feats))


def test_resnet18_has_the_cifar_stem():
    model = build_model("resnet18", InputSpec((3, 32, 32), 10, 255.0, (0.5,), (0.25,)))
    conv1 = model.net.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert isinstance(model.net.maxpool, torch.nn.Identity)
    assert 11.1e6 < sum(p.numel() for p in model.parameters()) < 11.2e6
    names = [n for n, _ in model.named_parameters()]
    assert "head.weight" in names and not any(n.startswith("net.fc") for n in names)


def test_models_refuse_inputs_they_cannot_take():
    with pytest.raises(UsageError, match="model 'resnet18' needs C x H x W images"):
        build_model("resnet18", InputSpec((64,), 10, 1.0, (0.0,), (1.0,)))


# ---- augmentation ----------------------------------------------------------
def test_crop_flip_is_a_padded_crop_and_flip_of_each_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = A.crop_flip(x, g, padding=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    found = []
    for i in range(len(x)):
        matches = [(top, left, flip) for top in range(5) for left in range(5) for flip in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(-1) if flip else c)(
                       padded[i, :, top:top + 8, left:left + 8]))]
        assert len(matches) == 1, i
        found.append(matches[0])
    assert {f[2] for f in found} == {False, True}                      # both flipped and unflipped images
    assert len({f[:2] for f in found}) > 5                             # offsets vary per image
    again = A.crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert torch.equal(out, again)                                     # seeded


def test_training_augments_and_evaluation_does_not(tmp_path, monkeypatch):
    """The harness passes the dataset's augmentation to the training loop (the
    original's training calls it per batch); evaluation never calls it."""
    calls = []

    def counting(x, generator):
        calls.append(len(x))
        return A.crop_flip(x, generator)

    monkeypatch.setitem(A.AUGMENTATIONS, "crop_flip", counting)
    write_cifar10(tmp_path / "data", n_train=40, n_test=20)
    accept_checksums(monkeypatch, tmp_path / "data")
    grid = Grid(datasets=["cifar10"], models=["cnn"], scenarios=["random"], ratios=[0.1], seeds=[0],
                methods=["original"], train={"epochs": 1, "batch_size": 12}, out=str(tmp_path / "out"),
                data_root=str(tmp_path / "data"), floor_retrains=0)
    harness = Harness.from_grid(grid)
    spec = expand(grid)[0]
    harness.references(spec)
    assert sum(calls) == 36 + 32          # every image once per epoch: the original's pool, then the retain set
    n = len(calls)
    harness.run(spec)                                                  # evaluation only: references are cached
    assert len(calls) == n


# ---- training subsets --------------------------------------------------------
def test_training_pool_default_is_the_plain_validation_split():
    y = np.arange(1000) % 10
    pool, val = S.training_pool(y, 0.1)
    rest, part = S.stratified_split(y, 0.1, seed=0)
    assert np.array_equal(pool, rest) and np.array_equal(val, part)


def test_training_subset_is_fixed_class_balanced_and_holds_the_validation_split():
    y = np.repeat(np.arange(10), [600, 500, 400, 300, 200, 600, 500, 400, 300, 200])
    pool, val = S.training_pool(y, 0.1, subset=1000)
    again = S.training_pool(y, 0.1, subset=1000)
    assert np.array_equal(pool, again[0]) and np.array_equal(val, again[1])
    assert len(pool) + len(val) == 1000 and len(val) == 100 and not set(pool) & set(val)
    counts = np.bincount(y[np.concatenate([pool, val])], minlength=10)
    assert counts.tolist() == [150, 125, 100, 75, 50, 150, 125, 100, 75, 50]   # proportional to the classes


def test_subsets_enter_the_run_identity_and_the_record(tmp_path):
    base = dict(scenarios=["random"], ratios=[0.1], seeds=[0], methods=["original"], out=str(tmp_path),
                train={"epochs": 2})
    full = expand(Grid(**base))[0]
    sub = expand(Grid(**base, train_subset=600, test_subset=200))[0]
    assert "train_subset" not in full.data_identity()                  # full-data keys are unchanged
    assert sub.key != full.key and sub.data_identity()["train_subset"] == 600
    record = Harness(out=tmp_path).run(sub)
    assert record["status"] == "ok", record.get("message")
    sizes = record["sizes"]
    assert sizes["retain"] + sizes["forget"] + sizes["val"] == 600 and sizes["test"] == 200
    assert record["config"]["train_subset"] == 600
    assert RunSpec.from_config(record["config"]).key == sub.key
    with pytest.raises(UsageError, match="train_subset 5000 exceeds the 1348 images"):
        Harness(out=tmp_path).run(expand(Grid(**base, train_subset=5000))[0])


# ---- class names and the sub-class scenario --------------------------------------
def test_classes_by_name_resolve_to_indices():
    specs = expand(Grid(datasets=["cifar100"], scenarios=["class"], classes=["rocket", "sea", 19],
                        methods=["original"], seeds=[0]))
    assert [s.scenario.forget_class for s in specs] == [69, 71, 19]
    sub = expand(Grid(datasets=["cifar20"], scenarios=["subclass"], subclasses=["cattle"], methods=["original"],
                      seeds=[0]))
    assert sub[0].scenario.kind == "subclass" and sub[0].scenario.forget_class == 19
    with pytest.raises(UsageError, match="class 'rockt' does not exist in dataset 'cifar100' .did you mean 'rocket'"):
        expand(Grid(datasets=["cifar100"], scenarios=["class"], classes=["rockt"]))
    with pytest.raises(UsageError, match="scenario 'subclass' needs a dataset with sub-classes .cifar20.; 'digits'"):
        expand(Grid(scenarios=["subclass"], subclasses=["rocket"]))


@pytest.mark.slow
def test_subclass_forgetting_on_cifar20(tmp_path, monkeypatch):
    written = write_cifar100(tmp_path / "data", n_train=400, n_test=200)
    accept_checksums(monkeypatch, tmp_path / "data")
    grid = Grid(datasets=["cifar20"], models=["cnn"], scenarios=["subclass"], subclasses=["rocket"], seeds=[0],
                methods=["original", "retrain", "finetune"], val_frac=0.0, train={"epochs": 1, "batch_size": 100},
                method_args={"finetune": {"epochs": 1}}, out=str(tmp_path / "out"), data_root=str(tmp_path / "data"))
    harness = Harness.from_grid(grid)
    records = [harness.run(spec) for spec in expand(grid)]
    assert [r["status"] for r in records] == ["ok"] * 3, [r.get("message") for r in records]
    spec = expand(grid)[0]
    forget, _ = harness.forget_indices(spec)
    assert forget.tolist() == np.flatnonzero(written["fine_train"] == 69).tolist()   # every rocket image
    assert set(harness.splits(spec)["forget"].y.tolist()) == {19}                     # labelled vehicles_2
    mask = harness.test_forget_mask(spec)
    assert mask.sum() == (written["fine_test"] == 69).sum() == 2
    for r in records:
        assert 0 <= r["metrics"]["test_acc_forget_class"] <= 100 and "test_acc_other_classes" in r["metrics"]


# ---- precision and determinism -----------------------------------------------------
def test_mixed_precision_is_off_on_the_cpu(tmp_path):
    from unlearnbench.harness.protocol.device import resolve_precision
    from unlearnbench.methods._train import autocast, set_autocast

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None and resolve_precision("fp32", cpu) is None
    with pytest.raises(UsageError, match="precision 'bf16' is for CUDA devices"):
        Harness(out=tmp_path, precision="bf16", device="cpu")
    try:
        set_autocast(torch.bfloat16)          # even when configured, the CPU computes in fp32
        with autocast(cpu):
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and not torch.is_autocast_enabled("cpu")
    finally:
        set_autocast(None)


def test_deterministic_flag_reaches_torch_and_the_record(tmp_path):
    try:
        harness = Harness(out=tmp_path, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        grid = Grid(scenarios=["random"], ratios=[0.1], seeds=[0], methods=["original"], train={"epochs": 2})
        record = harness.run(expand(grid)[0])
        assert record["env"]["deterministic"] is True and record["env"]["precision"] == "fp32"
    finally:
        torch.use_deterministic_algorithms(False)


# ---- ResNet-18 through the whole protocol --------------------------------------------
@pytest.mark.slow
def test_resnet18_two_steps_through_the_protocol(tmp_path, monkeypatch):
    """Tiny CIFAR-10 files → original and retrain (two SGD steps each, crop+flip)
    → FT (two steps) → metrics → records."""
    write_cifar10(tmp_path / "data", n_train=40, n_test=20)
    accept_checksums(monkeypatch, tmp_path / "data")
    grid = Grid(datasets=["cifar10"], models=["resnet18"], scenarios=["random"], ratios=[0.1], seeds=[0],
                methods=["original", "retrain", "finetune"], train={"epochs": 1, "batch_size": 18},
                method_args={"finetune": {"epochs": 1, "lr": 0.01}}, out=str(tmp_path / "out"),
                data_root=str(tmp_path / "data"), floor_retrains=0)
    harness = Harness.from_grid(grid)
    records = {s.method: harness.run(s) for s in expand(grid)}
    assert all(r["status"] == "ok" for r in records.values()), {m: r.get("message") for m, r in records.items()}
    assert records["original"]["sizes"] == {"retain": 32, "forget": 4, "val": 4, "test": 20}
    assert records["retrain"]["metrics"]["param_dist"] == 0.0
    for method in ("original", "finetune"):
        m = records[method]["metrics"]
        assert m["param_dist"] > 0, method
        assert all(np.isfinite(v) for k, v in m.items() if v is not None and k != "mia_loss_cv"), method
        assert np.isnan(m["mia_loss_cv"])    # 4 forget images: too few for its 10% cross-validation splits
    assert harness.reference_trainings == 2
    refs = harness.references(expand(grid)[0])
    trained = refs.original.state_dict()
    moved = [k for k, v in refs.theta0.items() if v.is_floating_point() and not torch.equal(v, trained[k])]
    assert "head.weight" in moved and "net.conv1.weight" in moved     # the two steps trained every layer
