"""Reading the tuned presets (``configs/tuned/<dataset>-<model>.toml``,
written by ``unlearnbench tune``): the hyperparameters a grid uses unless
``tuned = false`` / ``--no-tuned`` (see harness/tuning/tune.py)."""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from unlearnbench.methods import get_method

from ..errors import UsageError
from ..tomlio import tomllib


def presets_dir(tuned) -> Path | None:
    """The presets folder a grid's ``tuned`` setting names (None: no presets)."""
    if tuned is False or tuned is None:
        return None
    if tuned is True:
        return Path(str(resources.files("unlearnbench.configs"))) / "tuned"
    return Path(tuned)


def preset_path(folder: Path, dataset: str, model: str) -> Path:
    return Path(folder) / f"{dataset}-{model}.toml"


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime_ns: int) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"tuned presets {path!r} are not valid TOML: {e}") from None


def load_presets(folder: Path | None, dataset: str, model: str) -> dict:
    if folder is None:
        return {}
    path = preset_path(folder, dataset, model)
    return _read(str(path), path.stat().st_mtime_ns) if path.is_file() else {}


def tuned_values(tuned, dataset: str, model: str, scenario_label: str, method: str) -> dict:
    """The tuned hyperparameters of one method in one table ({} if none)."""
    folder = presets_dir(tuned)
    values = dict(load_presets(folder, dataset, model).get("hyper", {}).get(scenario_label, {}).get(method, {}))
    accepted = get_method(method).defaults()
    unknown = sorted(set(values) - set(accepted))
    if unknown:
        raise UsageError(f"{preset_path(folder, dataset, model)}: {method} has no hyperparameter "
                         f"{', '.join(map(repr, unknown))} (accepted: {', '.join(sorted(accepted))}); "
                         f"rerun `unlearnbench tune {method}`")
    return values
