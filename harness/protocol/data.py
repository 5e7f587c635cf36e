"""Data and splits: each dataset loaded once (the files it reads become off
limits to methods), the protocol's fixed carve-outs (the training pool, the
validation split, the images that play the test set), the seeded forget
sets, saved as JSON under ``<out>/splits/``, and a run's retain / forget /
validation / test tensors on the device."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unlearnbench import datasets as D
from unlearnbench.datasets import splits as S
from unlearnbench.methods import Split

from ..errors import UsageError
from ..models import InputSpec
from .guard import recording_data_files
from .records import write_json_atomic
from .spec import RunSpec, derive_seed, stable_hash

EVALUATE_ON = ("test", "val")


def check_subsets(ds: D.Dataset, name: str, train_subset: int | None, test_subset: int | None) -> None:
    """A subset no larger than its split (UsageError otherwise)."""
    for key, n, labels in (("train_subset", train_subset, ds.y_train), ("test_subset", test_subset, ds.y_test)):
        if n is not None and n > len(labels):
            raise UsageError(f"{key} {n} exceeds the {len(labels)} images of {name!r}")


def _saved_indices(path: Path) -> list | None:
    """The indices of a saved split file; None if it is missing or unreadable (then rewritten)."""
    try:
        return json.loads(path.read_text()).get("indices")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class TestRows:
    """Which images play the test set: rows of the test split (``source``
    "test"), or on the tuning protocol rows of the training split ("train":
    a fixed class-balanced half of the validation split, which the method
    never sees; ``method_val`` is the other half, its ``ctx.val``)."""

    __test__ = False      # not a pytest test class
    source: str           # "test" | "train"
    rows: np.ndarray      # indices into that split
    method_val: np.ndarray


@dataclass
class ProtocolData:
    """A dataset on the device, with its fixed validation carve-out."""

    ds: D.Dataset
    fingerprint: str
    pool: np.ndarray        # training indices used for training (train minus validation)
    val: np.ndarray         # held-out validation indices (never trained on)
    test: np.ndarray        # test indices evaluated (all, or the test subset)
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    spec: InputSpec
    test_rows: TestRows     # which images the runs are evaluated on as "test"


class DataStore:
    """Datasets, protocol data, forget sets and splits, each computed once."""

    def __init__(self, out, device: torch.device, data_root=None, download: bool = False, evaluate_on: str = "test"):
        if evaluate_on not in EVALUATE_ON:
            raise ValueError(f"evaluate_on must be 'test' or 'val', got {evaluate_on!r}")
        self.out = Path(out)
        self.device = device
        self.data_root = data_root
        self.download = download
        self.evaluate_on = evaluate_on   # "val": the tuning protocol, which never touches the test set
        self._datasets: dict = {}
        self._data: dict = {}
        self._forget: dict = {}
        self._splits: dict = {}

    def dataset(self, name: str) -> D.Dataset:
        if name not in self._datasets:
            try:
                with recording_data_files():   # the files read here are off limits to methods
                    self._datasets[name] = D.load_dataset(name, root=self.data_root, download=self.download)
            except D.DataError as e:
                raise UsageError(f"dataset {name!r}: {e}") from None
        return self._datasets[name]

    def data(self, spec: RunSpec) -> ProtocolData:
        key = (spec.dataset, spec.val_frac, spec.train_subset, spec.test_subset)
        if key not in self._data:
            ds = self.dataset(spec.dataset)
            check_subsets(ds, spec.dataset, spec.train_subset, spec.test_subset)
            pool, val = S.training_pool(ds.y_train.numpy(), spec.val_frac, spec.train_subset)
            test = (np.arange(len(ds.y_test)) if spec.test_subset is None
                    else S.class_balanced_sample(ds.y_test.numpy(), spec.test_subset, seed=0))
            if self.evaluate_on == "val":
                keep, held = S.stratified_split(ds.y_train.numpy()[val], 0.5, seed=0)
                test_rows = TestRows("train", val[held], val[keep])
            else:
                test_rows = TestRows("test", test, val)
            dev = self.device
            self._data[key] = ProtocolData(
                ds=ds, fingerprint=ds.fingerprint(), pool=pool, val=val, test=test,
                x_train=ds.x_train.to(dev), y_train=ds.y_train.to(dev),
                x_test=ds.x_test[test].to(dev), y_test=ds.y_test[test].to(dev), spec=InputSpec.of(ds),
                test_rows=test_rows)
        return self._data[key]

    def forget_indices(self, spec: RunSpec) -> tuple[np.ndarray, str]:
        """The forget set (indices into the dataset's training split), saved
        as JSON under ``<out>/splits/``; returns (indices, relative path)."""
        ident = {**spec.data_identity(), "scenario": spec.scenario.to_dict(), "seed": spec.seed}
        key = stable_hash(ident)
        if key not in self._forget:
            data = self.data(spec)
            labels = data.ds.y_train.numpy()[data.pool]
            sc = spec.scenario
            if sc.kind == "random":
                rel = S.random_forget(labels, sc.ratio, derive_seed(spec.seed, "forget"))
            elif sc.kind == "class":
                if not 0 <= sc.forget_class < data.ds.num_classes:
                    raise UsageError(f"class {sc.forget_class} does not exist in {spec.dataset!r}; "
                                     f"accepted: 0..{data.ds.num_classes - 1}")
                rel = S.class_forget(labels, sc.forget_class)
            elif sc.kind == "subclass":
                fine_names = data.ds.extras.get("fine_names")
                if fine_names is None or not 0 <= sc.forget_class < len(fine_names):
                    raise UsageError(f"sub-class {sc.forget_class} does not exist in {spec.dataset!r}")
                try:
                    rel = S.class_forget(data.ds.extras["fine_train"].numpy()[data.pool], sc.forget_class)
                except ValueError as e:
                    raise UsageError(f"{spec.dataset!r}: {e}") from None
            else:
                raise UsageError(f"unknown scenario {sc.kind!r}")
            idx = data.pool[rel]
            label = sc.label.replace(" ", "-").replace("%", "pct")
            rel_path = f"splits/{spec.dataset}-{label}-seed{spec.seed}-{key[:8]}.json"
            path = self.out / rel_path
            payload = {**ident, "n_forget": int(len(idx)), "n_pool": int(len(data.pool)),
                       "indices": [int(i) for i in idx]}
            if _saved_indices(path) != payload["indices"]:
                write_json_atomic(path, payload)
            self._forget[key] = (idx, rel_path)
        return self._forget[key]

    def splits(self, spec: RunSpec) -> dict[str, Split]:
        """Retain / forget / validation / test tensors of the run, on the device."""
        data = self.data(spec)
        forget, path = self.forget_indices(spec)
        if path in self._splits:
            return self._splits[path]
        retain = np.setdiff1d(data.pool, forget)
        to = lambda idx: torch.as_tensor(idx, device=self.device)
        rows = data.test_rows
        if rows.source == "test":
            test = Split(data.x_test, data.y_test)
        else:
            test = Split(data.x_train[to(rows.rows)], data.y_train[to(rows.rows)])
        self._splits = {path: {
            "retain": Split(data.x_train[to(retain)], data.y_train[to(retain)]),
            "forget": Split(data.x_train[to(forget)], data.y_train[to(forget)]),
            "val": Split(data.x_train[to(rows.method_val)], data.y_train[to(rows.method_val)]),
            "test": test,
        }}
        return self._splits[path]

    def test_forget_mask(self, spec: RunSpec) -> np.ndarray | None:
        """Test images of the forgotten class (class) or sub-class (subclass)."""
        sc, data = spec.scenario, self.data(spec)
        if sc.kind not in ("class", "subclass"):
            return None
        rows = data.test_rows
        if sc.kind == "class":
            labels = (data.ds.y_train if rows.source == "train" else data.ds.y_test).numpy()
        else:
            labels = data.ds.extras[f"fine_{rows.source}"].numpy()
        return labels[rows.rows] == sc.forget_class
