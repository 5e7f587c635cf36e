"""From command-line options and TOML presets to a validated list of runs.

Precedence: built-in defaults < ``--config FILE.toml`` < command-line options.
A file may ``include`` other presets: the run is the union of their grids and
its own, the command-line options applying to each, and the including grid's
folders, device and precision to all.
Every value is checked before anything is written; a bad one raises
:class:`UsageError` naming the value and what is accepted.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from unlearnbench import datasets as D
from unlearnbench.methods import TrainConfig, UnknownMethod, coerce, get_method, list_methods

from .. import defaults
from ..errors import UsageError
from ..models import check_model_arguments, get_model
from ..tomlio import tomllib
from ..tuning.presets import tuned_values
from .spec import SCENARIOS, RunSpec, Scenario

DEFAULT_SEEDS = defaults.SEEDS   # harness/defaults.py


@dataclass
class Grid:
    """A benchmark grid: the cross product of its lists is the set of runs."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    models: list[str] = field(default_factory=lambda: ["mlp"])
    scenarios: list[str] = field(default_factory=lambda: ["random", "class"])
    ratios: list[float] = field(default_factory=lambda: [0.1, 0.5])
    classes: list[int | str] = field(default_factory=lambda: [0])   # class scenario: indices or names
    subclasses: list[int | str] = field(default_factory=list)        # subclass scenario: fine classes (cifar20)
    methods: list[str] | None = None          # None = every registered method
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    val_frac: float = 0.1
    train_subset: int | None = None           # a fixed class-balanced subset of the training images
    test_subset: int | None = None            # ... and of the test images
    floor_retrains: int = 2                   # K extra retrains per forget set: the retrain noise floor
    tuned: bool | str = True                  # use configs/tuned/ presets (False: none; a path: that folder)
    train: dict = field(default_factory=dict)         # overrides of the models' default training
    model_args: dict = field(default_factory=dict)    # model name -> kwargs (one fixed value each)
    model_grid: dict = field(default_factory=dict)    # model name -> kwarg -> list of grid values
    method_args: dict = field(default_factory=dict)   # method name -> hyperparameter overrides
    device: str = "auto"
    out: str = "results"
    cache_dir: str | None = None
    data_root: str | None = None
    download: bool = False
    precision: str = "auto"                   # auto (bf16/fp16 autocast on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    deterministic: bool = False               # deterministic kernels (slower on GPU)
    include: list[str] = field(default_factory=list)  # presets (names or paths) whose runs join this grid's
    parts: tuple = field(default=(), repr=False, metadata={"internal": True})  # the included grids, resolved

    LIST_KEYS = ("datasets", "models", "scenarios", "ratios", "classes", "subclasses", "methods", "seeds", "include")
    # Where and how runs execute: an included grid takes these from the grid that includes it.
    EXECUTION_KEYS = ("out", "cache_dir", "data_root", "download", "device", "precision", "deterministic")
    PRECISIONS = ("auto", "fp32", "bf16", "fp16")
    TABLE_KEYS = ("train", "model_args", "model_grid", "method_args")


def _suggest(key: str, accepted) -> str:
    close = difflib.get_close_matches(key, accepted, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def preset_names() -> list[str]:
    """Presets shipped in configs/ (installed as unlearnbench.configs)."""
    return sorted(p.name[:-5] for p in resources.files("unlearnbench.configs").iterdir()
                  if p.name.endswith(".toml"))


def resolve_config(name: str) -> Path:
    """A path to a TOML file, or the name of a shipped preset (``default``)."""
    path = Path(name)
    if path.is_file():
        return path
    stem = name[:-5] if name.endswith(".toml") else name
    if "/" not in name and stem in preset_names():
            return Path(str(resources.files("unlearnbench.configs") / f"{stem}.toml"))
    raise UsageError(f"config file {name!r} not found; shipped presets: {', '.join(preset_names())}")


def load_toml(path: str | Path) -> dict:
    path = resolve_config(str(path))
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {str(path)!r} is not valid TOML: {e}") from None


def apply_mapping(grid: Grid, data: dict, source: str) -> Grid:
    """Set grid fields from a mapping (a TOML file or parsed options)."""
    accepted = [f.name for f in fields(Grid) if not f.metadata.get("internal")]
    for key, value in data.items():
        if key not in accepted:
            raise UsageError(f"{source}: unknown key {key!r}{_suggest(key, accepted)}; accepted: {', '.join(accepted)}")
        if key in Grid.TABLE_KEYS:
            if not isinstance(value, dict):
                raise UsageError(f"{source}: {key!r} must be a table, got {value!r}")
            merged = dict(getattr(grid, key))
            if key == "model_grid":
                _check_model_grid(value, source)
            for k, v in value.items():
                merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) and key != "train" else v
            setattr(grid, key, merged)
        elif key in Grid.LIST_KEYS:
            if isinstance(value, (str, int, float)):
                value = [value]
            if not isinstance(value, list):
                raise UsageError(f"{source}: {key!r} must be a list, got {value!r}")
            setattr(grid, key, None if key == "methods" and value in (["all"], []) else list(value))
        else:
            setattr(grid, key, value)
    return grid


def _check_model_grid(value: dict, source: str) -> None:
    for model, axes in value.items():
        if not isinstance(axes, dict):
            raise UsageError(f"{source}: model_grid.{model} must be a table of argument = [values], got {axes!r}")
        for arg, values in axes.items():
            if not isinstance(values, list) or not values:
                raise UsageError(f"{source}: model_grid.{model}.{arg} must be a non-empty list of grid values "
                                 f"(e.g. [128, 512]), got {values!r}")


def parse_model_value(text: str):
    """One model-argument value from the command line: an int, a float,
    true/false, ``128x128`` (a list: two layers of 128), else a string."""
    text = text.strip()
    if re.fullmatch(r"\d+(x\d+)+", text):
        return [int(t) for t in text.split("x")]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_model_args(items: list[str], models: list[str]) -> dict:
    """``["hidden=128,512", "cnn.channels=16x32"]`` -> model_grid: each
    comma-separated value is one grid value; ``KEY`` applies to every model
    of the grid, ``MODEL.KEY`` to that model only."""
    out: dict = {}
    for item in items:
        name, sep, text = item.partition("=")
        values = [parse_model_value(t) for t in text.split(",") if t.strip()]
        if not sep or not name.strip() or not values:
            raise UsageError(f"--model-args {item!r}: expected [MODEL.]KEY=VALUE[,VALUE...], e.g. hidden=128,512")
        model, dot, key = name.strip().rpartition(".")
        for m in ([model] if dot else models):
            out.setdefault(m, {})[key] = values
    return out


def parse_list(text: str, kind, option: str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"{option} needs at least one value, got {text!r}")
    try:
        return [kind(t) for t in items]
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a comma-separated list of {kind.__name__}s") from None


def parse_assignments(items: list[str], option: str) -> dict:
    """``["muso.lr=1e-4", ...]`` -> ``{"muso": {"lr": "1e-4"}}``."""
    out: dict = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        owner, dot, key = name.partition(".")
        if not sep or not dot or not owner or not key:
            raise UsageError(f"{option} {item!r}: expected NAME.KEY=VALUE")
        out.setdefault(owner, {})[key] = value
    return out


def grid_from_args(args) -> Grid:
    """Defaults, then ``--config``, then explicit command-line options."""
    grid = Grid()
    if getattr(args, "config", None):
        grid = apply_mapping(grid, load_toml(args.config), f"config file {args.config!r}")
    options = {}
    for key, kind in (("datasets", str), ("models", str), ("scenarios", str), ("methods", str),
                      ("ratios", float), ("classes", class_ref), ("subclasses", class_ref), ("seeds", int)):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = parse_list(value, kind, f"--{key}")
    for key in ("device", "out", "cache_dir", "data_root", "val_frac", "train_subset", "test_subset", "precision",
                "floor_retrains"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    for flag in ("download", "deterministic"):
        if getattr(args, flag, False):
            options[flag] = True
    if getattr(args, "no_tuned", False):
        options["tuned"] = False
    if getattr(args, "method_arg", None):
        options["method_args"] = parse_assignments(args.method_arg, "--method-arg")
    if getattr(args, "model_args", None):
        options["model_grid"] = parse_model_args(args.model_args, options.get("models") or grid.models)
    if getattr(args, "train_arg", None):
        options["train"] = {k: v for k, v in (a.split("=", 1) for a in args.train_arg if "=" in a)}
        if len(options["train"]) != len(args.train_arg):
            raise UsageError("--train-arg expects KEY=VALUE")
    grid = apply_mapping(grid, options, "command line")
    return dataclasses.replace(grid, parts=tuple(_included(grid, options)))


def _included(grid: Grid, options: dict) -> list[Grid]:
    """The grids a config file includes, each with the command-line options applied
    and the including grid's execution settings (folders, device, precision)."""
    parts = []
    for name in grid.include:
        data = load_toml(name)
        if data.get("include"):
            raise UsageError(f"config {name!r} is included and includes {data['include']!r} itself; "
                             "accepted: one level of include")
        part = apply_mapping(apply_mapping(Grid(), data, f"config file {name!r}"), options, "command line")
        parts.append(dataclasses.replace(part, **{k: getattr(grid, k) for k in Grid.EXECUTION_KEYS}))
    return parts


def class_ref(text: str) -> int | str:
    """A class on the command line: an index, or a name (``rocket``)."""
    return int(text) if text.lstrip("-").isdigit() else text


def resolve_class(ref, names: tuple[str, ...], what: str, dataset: str) -> int:
    """The index of a class given by index or by name; UsageError otherwise."""
    if isinstance(ref, str) and ref in names:
        return names.index(ref)
    if isinstance(ref, str) and ref.lstrip("-").isdigit():
        ref = int(ref)
    if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(names):
        return ref
    named = [str(i) for i in range(len(names))] != list(names)
    hint = _suggest(ref, names) if isinstance(ref, str) else ""
    accepted = f"0..{len(names) - 1}" + (f" or a name ({', '.join(names[:5])}, ...)" if named else "")
    raise UsageError(f"{what} {ref!r} does not exist in dataset {dataset!r}{hint}; accepted: {accepted}")


def _check_subset(value, key: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 2):
        raise UsageError(f"{key} {value!r} is not an integer >= 2 (a number of images)")


def expand(grid: Grid) -> list:
    """Validate the grid and return its runs (RunSpec), in a cache-friendly order:
    the included grids' first (a run in two of them is listed once)."""
    if grid.include and len(grid.parts) != len(grid.include):
        grid = dataclasses.replace(grid, parts=tuple(_included(grid, {})))
    specs = {}
    for part in grid.parts:
        specs.update((s.key, s) for s in _expand_one(part))
    specs.update((s.key, s) for s in _expand_one(grid))
    return list(specs.values())


def _expand_one(grid: Grid) -> list:
    for name in grid.datasets:
        try:
            D.check_name(name)
        except D.UnknownName as e:
            raise UsageError(str(e)) from None
    for name in grid.models:
        get_model(name)
    for key in ("model_args", "model_grid"):
        for name, args in getattr(grid, key).items():
            get_model(name)
            check_model_arguments(name, args)
    methods = grid.methods if grid.methods is not None else list_methods()
    for name in methods:
        try:
            get_method(name)
        except UnknownMethod as e:
            raise UsageError(str(e)) from None
    for name in grid.method_args:
        if name not in methods:
            try:
                get_method(name)
            except UnknownMethod as e:
                raise UsageError(f"method_args: {e}") from None
    for s in grid.scenarios:
        if s not in SCENARIOS:
            raise UsageError(f"unknown scenario {s!r}; accepted: {', '.join(SCENARIOS)}")
    for r in grid.ratios:
        if not isinstance(r, (int, float)) or isinstance(r, bool) or not 0.0 < r < 1.0:
            raise UsageError(f"forget ratio {r!r} is outside (0, 1); accepted: a number strictly between 0 and 1")
    for s in grid.seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise UsageError(f"seed {s!r} is not a non-negative integer")
    if not isinstance(grid.val_frac, (int, float)) or not 0.0 <= grid.val_frac < 0.5:
        raise UsageError(f"val_frac {grid.val_frac!r} is outside [0, 0.5)")
    if not isinstance(grid.floor_retrains, int) or isinstance(grid.floor_retrains, bool) or grid.floor_retrains < 0:
        raise UsageError(f"floor_retrains {grid.floor_retrains!r} is not a non-negative integer")
    if not isinstance(grid.tuned, (bool, str)) or (isinstance(grid.tuned, str) and not Path(grid.tuned).is_dir()):
        raise UsageError(f"tuned {grid.tuned!r}: expected true, false or an existing presets folder")
    if grid.device not in ("auto", "cpu", "cuda") and not str(grid.device).startswith("cuda:"):
        raise UsageError(f"unknown device {grid.device!r}; accepted: auto, cpu, cuda, cuda:N")
    if grid.precision not in Grid.PRECISIONS:
        raise UsageError(f"unknown precision {grid.precision!r}; accepted: {', '.join(Grid.PRECISIONS)}")
    for key in ("train_subset", "test_subset"):
        _check_subset(getattr(grid, key), key)
    classes, subclasses = {}, {}
    for name in grid.datasets:
        if "class" in grid.scenarios:
            classes[name] = [resolve_class(c, D.class_names(name), "class", name) for c in grid.classes]
        if "subclass" in grid.scenarios:
            fine = D.subclass_names(name)
            if fine is None:
                with_sub = [d for d in D.list_datasets() if D.subclass_names(d)]
                raise UsageError(f"scenario 'subclass' needs a dataset with sub-classes ({', '.join(with_sub)}); "
                                 f"{name!r} has none")
            if not grid.subclasses:
                raise UsageError("scenario 'subclass' needs the fine classes to forget: --subclasses (e.g. rocket)")
            subclasses[name] = [resolve_class(c, fine, "sub-class", name) for c in grid.subclasses]

    specs = []
    hints = typing.get_type_hints(TrainConfig)
    for d_name, m_name in itertools.product(grid.datasets, grid.models):
        info = get_model(m_name)
        try:
            train_over = {k: coerce(v, hints[k], f"train.{k}") if k in hints else v
                          for k, v in grid.train.items()}
            train = TrainConfig.from_dict({**info.train.to_dict(), **train_over})
        except (ValueError, UnknownMethod) as e:
            raise UsageError(f"train: {e}") from None
        scenarios = []
        for kind in grid.scenarios:
            if kind == "random":
                scenarios += [Scenario("random", ratio=float(r)) for r in grid.ratios]
            elif kind == "class":
                scenarios += [Scenario("class", forget_class=c) for c in classes[d_name]]
            elif kind == "subclass":
                scenarios += [Scenario("subclass", forget_class=c) for c in subclasses[d_name]]
        for point, seed, scenario, method in itertools.product(model_points(grid, m_name), grid.seeds, scenarios,
                                                               methods):
            overrides = {**tuned_values(grid.tuned, d_name, m_name, scenario.label, method),
                         **grid.method_args.get(method, {})}
            try:
                hyper = get_method(method).resolve(overrides, scenario.kind)
            except UnknownMethod as e:
                raise UsageError(str(e)) from None
            specs.append(RunSpec(
                dataset=d_name, model=m_name, scenario=scenario, method=method, seed=int(seed),
                train=train, hyper=_as_plain(hyper), model_args=point,
                val_frac=float(grid.val_frac), train_subset=grid.train_subset, test_subset=grid.test_subset,
                floor_retrains=grid.floor_retrains))
    return specs


def model_points(grid: Grid, model: str) -> list[dict]:
    """The model's arguments at each point of its grid: the fixed
    ``model_args`` with one value of every ``model_grid`` axis (which wins)."""
    axes = grid.model_grid.get(model, {})
    fixed = {k: v for k, v in grid.model_args.get(model, {}).items() if k not in axes}
    return [{**fixed, **dict(zip(axes, values))} for values in itertools.product(*axes.values())]


def _as_plain(hyper) -> dict:
    if hyper is None:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(hyper).items()}
