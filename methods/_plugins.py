"""Entry-point plugins, one idiom for every registry (methods, datasets, models).

A registry is a decorator that files an object under a name (``@register_method``,
``@register_dataset``, ``@register_model``); an installed package adds to it by naming,
in an entry-point group, a module whose import runs that decorator::

    [project.entry-points."unlearnbench.datasets"]
    my_data = "my_package.my_data"      # a module that calls @register_dataset("my_data", ...)

Each registry looks a name up in what is registered, and only on a miss (or when
listing) imports the group's entry points it has not imported yet.
"""
from __future__ import annotations

from typing import Callable


def load_entry_points(group: str, kind: str, registered: Callable[[str], bool], loaded: set,
                      error: type[Exception]) -> dict[str, str]:
    """Import each entry point of ``group`` not in ``loaded`` (``(name, value)`` pairs, updated).

    Returns ``{name: "distribution version"}`` for those imported now.  A plugin
    that fails to import, or registers no ``kind`` under its entry point's name,
    raises ``error`` naming the entry point and its distribution."""
    from importlib.metadata import entry_points

    found = {}
    for ep in entry_points(group=group):
        if (ep.name, ep.value) in loaded:
            continue
        dist = getattr(ep, "dist", None)
        where = f"{ep.name} = {ep.value!r}" + (f" from {dist.name} {dist.version}" if dist else "")
        try:
            ep.load()
        except Exception as e:
            raise error(f"{kind} plugin ({where}) failed to import: {type(e).__name__}: {e}") from e
        loaded.add((ep.name, ep.value))
        if not registered(ep.name):
            raise error(f"{kind} plugin ({where}) registered no {kind} named {ep.name!r}; "
                        f"the entry point's name must be the registered name")
        found[ep.name] = f"{dist.name} {dist.version}" if dist else ep.value
    return found
