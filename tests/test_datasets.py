import gzip
import struct

import numpy as np
import pytest

from unlearnbench import datasets as D
from unlearnbench.datasets import fashion_mnist


def test_digits_is_embedded_and_fixed():
    a, b = D.load_dataset("digits"), D.load_dataset("digits")
    assert a.x_train.shape == (1348, 1, 8, 8) and a.x_test.shape == (449, 1, 8, 8)
    assert a.x_train.dtype.is_floating_point is False and int(a.x_train.max()) == 16
    assert (a.x_train == b.x_train).all() and a.fingerprint() == b.fingerprint()
    assert a.num_classes == 10


def test_real_fashion_mnist_files_load():
    """CI installs the Debian package dataset-fashion-mnist; this reads those real files."""
    ds = D.load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y_train.numpy()).tolist() == [6000] * 10
    assert ds.class_names[9] == "ankle boot"
    assert abs(ds.x_train.float().mean().item() / 255 - 0.2860) < 1e-3


def _write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader_on_written_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 255, (20, 28, 28)), compress)
    _write_idx(raw / f"train-labels-idx1-ubyte{suffix}", np.arange(20) % 10, compress)
    _write_idx(raw / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 255, (10, 28, 28)), compress)
    _write_idx(raw / f"t10k-labels-idx1-ubyte{suffix}", np.arange(10), compress)
    ds = D.load_dataset("fashion_mnist", root=tmp_path)
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.y_test.tolist() == list(range(10))


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(D.DataError, match="apt-get install dataset-fashion-mnist"):
        D.load_dataset("fashion_mnist", root=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(D.DataError, match="not an IDX file"):
        fashion_mnist.read_idx(tmp_path / "train-images-idx3-ubyte")


def test_unknown_dataset_lists_accepted():
    with pytest.raises(D.UnknownName, match="accepted: cifar10, cifar100, cifar20, digits, fashion_mnist, mnist, svhn"):
        D.load_dataset("mnist10")


def test_no_top_level_datasets_package_is_installed():
    """pyproject maps every package under `unlearnbench.`: nothing may shadow
    Hugging Face's `datasets` in a researcher's environment."""
    from pathlib import Path

    import tomllib

    cfg = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p.startswith("unlearnbench.") for p in cfg["packages"])
    assert all(k.startswith("unlearnbench.") for k in cfg["package-dir"])
    assert not cfg.get("py-modules")
