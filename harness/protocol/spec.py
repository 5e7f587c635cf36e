"""What identifies one run, and the keys derived from it.

A run is dataset × model × scenario × method × seed (plus the model's
arguments, the reference training configuration and the method's resolved
hyperparameters).  Keys are hashes of canonical JSON, so the same
configuration always maps to the same record file and the same cached
reference models, on any machine.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from unlearnbench.methods import TrainConfig

PROTOCOL_VERSION = 1   # bump when a change makes old records or caches incomparable
DEFAULT_FLOOR_RETRAINS = 2   # extra retrains per forget set that measure the retrain noise floor
SCENARIOS = ("random", "class", "subclass")


def stable_hash(obj, n: int = 16) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def derive_seed(seed: int, *tags) -> int:
    """An independent 63-bit seed for one purpose (init, data order, method…)."""
    return int(stable_hash([seed, *tags], 15), 16)


def format_model_args(args: dict) -> str:
    """``hidden=2048`` / ``activation=cos, bandwidth=2, hidden=4096``: a model's
    arguments as a label (sorted by name; a list of widths as ``128x128``)."""
    def value(v) -> str:
        if isinstance(v, (list, tuple)):
            return "x".join(value(x) for x in v)
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={value(args[k])}" for k in sorted(args))


@dataclass(frozen=True)
class Scenario:
    """Which training samples are to be forgotten."""

    kind: str                         # random | class | subclass
    ratio: float | None = None        # random: share of the training set in (0, 1)
    forget_class: int | None = None   # class: the class index; subclass: the fine-class index (e.g. cifar20)

    @property
    def label(self) -> str:
        if self.kind == "random":
            return f"random {self.ratio * 100:g}%"
        return f"{self.kind} {self.forget_class}"

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.ratio is not None:
            d["ratio"] = self.ratio
        if self.forget_class is not None:
            d["forget_class"] = self.forget_class
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Scenario":
        return cls(d["kind"], d.get("ratio"), d.get("forget_class"))


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    model: str
    scenario: Scenario
    method: str
    seed: int
    train: TrainConfig
    hyper: dict = field(default_factory=dict, hash=False, compare=False)      # resolved, complete
    model_args: dict = field(default_factory=dict, hash=False, compare=False)
    val_frac: float = 0.1
    train_subset: int | None = None   # use a fixed class-balanced subset of this many training images
    test_subset: int | None = None    # ... and of this many test images (None: all)
    floor_retrains: int = DEFAULT_FLOOR_RETRAINS   # K extra retrains for the noise floor (0: none)

    # --- identities -------------------------------------------------------
    def data_identity(self) -> dict:
        ident = {"protocol": PROTOCOL_VERSION, "dataset": self.dataset, "val_frac": self.val_frac}
        for key in ("train_subset", "test_subset"):   # only when set: full-data keys stay as they were
            if getattr(self, key) is not None:
                ident[key] = getattr(self, key)
        return ident

    def original_identity(self) -> dict:
        """Everything the initial weights θ₀ and the original model depend on."""
        return {**self.data_identity(), "model": self.model, "model_args": self.model_args,
                "train": self.train.identity(), "seed": self.seed}

    def scenario_identity(self) -> dict:
        return {**self.original_identity(), "scenario": self.scenario.to_dict()}

    def identity(self) -> dict:
        return {**self.scenario_identity(), "method": self.method, "hyper": self.hyper,
                "floor_retrains": self.floor_retrains}

    @property
    def key(self) -> str:
        return stable_hash(self.identity())

    def to_config(self) -> dict:
        """The configuration stored in the record (enough to rebuild the spec)."""
        return {"dataset": self.dataset, "model": self.model, "model_args": self.model_args,
                "scenario": self.scenario.to_dict(), "method": self.method, "hyper": self.hyper,
                "seed": self.seed, "train": self.train.to_dict(), "val_frac": self.val_frac,
                "floor_retrains": self.floor_retrains, "protocol": PROTOCOL_VERSION,
                **{k: v for k, v in self.data_identity().items() if k in ("train_subset", "test_subset")}}

    @classmethod
    def from_config(cls, c: dict) -> "RunSpec":
        return cls(dataset=c["dataset"], model=c["model"], scenario=Scenario.from_dict(c["scenario"]),
                   method=c["method"], seed=int(c["seed"]), train=TrainConfig.from_dict(c["train"]),
                   hyper=dict(c["hyper"]), model_args=dict(c["model_args"]), val_frac=float(c["val_frac"]),
                   train_subset=c.get("train_subset"), test_subset=c.get("test_subset"),
                   floor_retrains=int(c.get("floor_retrains", 0)))

    def model_label(self) -> str:
        """``digits/mlp(hidden=2048)``: the data and the model with its arguments."""
        model = self.model + (f"({format_model_args(self.model_args)})" if self.model_args else "")
        return f"{self.dataset}/{model}"

    def describe(self) -> str:
        return f"{self.model_label()} {self.scenario.label} seed={self.seed} {self.method}"
