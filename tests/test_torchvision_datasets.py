"""Every dataset loads from its real on-disk format (tiny files written by the
tests, read through torchvision's classes exactly as the real ones are)."""
import urllib.error

import numpy as np
import pytest
import torch
from data_formats import accept_checksums, write_cifar10, write_cifar100, write_mnist, write_svhn

from unlearnbench import datasets as D


def test_cifar10_python_pickles(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path, n_train=50, n_test=20)
    accept_checksums(monkeypatch, tmp_path)
    ds = D.load_dataset("cifar10", root=tmp_path)
    assert ds.x_train.shape == (50, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert np.array_equal(ds.x_train.numpy(), written["x_train"])      # channel order and layout preserved
    assert np.array_equal(ds.x_test.numpy(), written["x_test"])
    assert ds.y_train.tolist() == written["y_train"].tolist() and ds.y_test.dtype == torch.int64
    assert ds.class_names == D.class_names("cifar10") and ds.class_names[0] == "airplane"
    assert ds.augment == "crop_flip" and len(ds.mean) == 3


def test_cifar_checksum_verification_still_runs(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    accept_checksums(monkeypatch, tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-10])                        # truncated after the MD5 was pinned
    with pytest.raises(D.DataError, match="failed torchvision's integrity check.*--download"):
        D.load_dataset("cifar10", root=tmp_path)


def test_cifar100_fine_labels_and_cifar20_superclasses(tmp_path, monkeypatch):
    written = write_cifar100(tmp_path, n_train=200, n_test=100)
    accept_checksums(monkeypatch, tmp_path)
    c100 = D.load_dataset("cifar100", root=tmp_path)
    assert c100.num_classes == 100 and c100.y_train.tolist() == written["fine_train"].tolist()
    assert np.array_equal(c100.x_test.numpy(), written["x_test"])
    c20 = D.load_dataset("cifar20", root=tmp_path)
    assert c20.num_classes == 20 and c20.class_names[19] == "vehicles_2"
    assert c20.y_train.tolist() == written["coarse_train"].tolist()
    assert c20.extras["fine_train"].tolist() == written["fine_train"].tolist()
    assert c20.extras["fine_test"].tolist() == written["fine_test"].tolist()
    rocket = c20.extras["fine_names"].index("rocket")
    assert set(c20.y_train[c20.extras["fine_train"] == rocket].tolist()) == {19}   # rocket ∈ vehicles_2
    assert D.subclass_names("cifar20")[rocket] == "rocket" and D.subclass_names("cifar100") is None


def test_cifar100_with_foreign_superclass_labels_is_rejected(tmp_path, monkeypatch):
    import pickle

    write_cifar100(tmp_path, n_train=100, n_test=100)
    path = tmp_path / "cifar-100-python" / "train"
    entry = pickle.loads(path.read_bytes(), encoding="latin1")
    entry["coarse_labels"] = [(c + 1) % 20 for c in entry["coarse_labels"]]
    path.write_bytes(pickle.dumps(entry, protocol=2))
    accept_checksums(monkeypatch, tmp_path)
    with pytest.raises(D.DataError, match="superclass labels do not match"):
        D.load_dataset("cifar20", root=tmp_path)


@pytest.mark.parametrize("layout", ["torchvision", "flat-gz"])
def test_mnist_idx(tmp_path, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path / "mnist"
    written = write_mnist(folder, n_train=30, n_test=10, compress=layout == "flat-gz")
    ds = D.load_dataset("mnist", root=tmp_path)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_train.dtype == torch.uint8
    assert np.array_equal(ds.x_train[:, 0].numpy(), written["x_train"])
    assert ds.y_test.tolist() == written["y_test"].tolist() and ds.augment is None


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    written = write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=20, n_test=10)
    ds = D.load_dataset("fashion_mnist", root=tmp_path)
    assert np.array_equal(ds.x_test[:, 0].numpy(), written["x_test"]) and ds.class_names[9] == "ankle boot"


@pytest.mark.parametrize("subfolder", ["svhn", "."])
def test_svhn_mat_files(tmp_path, monkeypatch, subfolder):
    written = write_svhn(tmp_path / subfolder, n_train=30, n_test=20)
    accept_checksums(monkeypatch, tmp_path)
    ds = D.load_dataset("svhn", root=tmp_path)
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert np.array_equal(ds.x_train.numpy(), written["x_train"])
    assert ds.y_train.tolist() == written["y_train"].tolist()           # the files' label 10 is digit 0
    assert 0 in ds.y_train.tolist() and ds.augment == "crop_flip"


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
                                          ("cifar20", "cifar-100-python"), ("svhn", "svhn"),
                                          ("mnist", "MNIST/raw")])
def test_missing_dataset_names_the_folder_and_the_flag(tmp_path, name, folder):
    with pytest.raises(D.DataError) as e:
        D.load_dataset(name, root=tmp_path)
    message = str(e.value)
    assert str(tmp_path / folder) in message and "--download" in message and "--data-root" in message
    assert "\n" not in message


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    """No network in tests: the download itself is replaced by a failing one."""
    import torchvision.datasets.cifar as tv_cifar

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(D.DataError, match="downloading CIFAR-10 into .* failed .*drop --download"):
        D.load_dataset("cifar10", root=tmp_path, download=True)


def test_class_names_are_known_before_loading():
    for name in D.list_datasets():
        assert len(D.class_names(name)) == D.num_classes(name), name
    assert D.class_names("cifar100").index("rocket") == 69
    assert D.class_names("cifar100").index("sea") == 71 and D.class_names("cifar100").index("cattle") == 19


def test_missing_dataset_on_the_command_line_exits_2_and_writes_nothing(tmp_path, capsys):
    from unlearnbench.harness.cli import main

    out = tmp_path / "out"
    assert main(["run", "--datasets", "cifar10", "--models", "resnet18", "--data-root", str(tmp_path),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"CIFAR-10 not found in {tmp_path / 'cifar-10-batches-py'}" in err and "--download" in err
    assert err.count("\n") == 1 and not out.exists()
