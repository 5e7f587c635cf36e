"""TOML, read by ``tomllib`` (``tomli`` on Python 3.10) and written in one
place, by ``tomli-w``: the tuned presets (harness/tuning/tune.py) and a
submission's preset table (harness/community.py).

What TOML cannot say is decided here, once:

- NaN and ±infinity are written as TOML's own ``nan``, ``inf`` and ``-inf``
  (TOML 1.0 floats; ``tomllib`` reads them back as the same floats), so a
  failed tuning trial's ``inf`` gap survives the round trip;
- TOML has no null: a key whose value is None is left out (a preset that
  omits a hyperparameter gives it its registered default);
- tuples are written as arrays.
"""
from __future__ import annotations

import tomli_w

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["dumps", "tomllib"]


def _without_none(value):
    """``value`` with the None entries of its tables left out, at any depth."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


def dumps(doc: dict, comment: str = "") -> str:
    """TOML text of ``doc`` (nested tables become ``[a.b.c]`` sections),
    preceded by ``comment`` as ``#`` lines."""
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return header + ("\n" if header else "") + tomli_w.dumps(_without_none(doc))
