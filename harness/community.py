"""``unlearnbench submit``: run a new method under the standard protocol,
validate it, rank it, and file it under ``community/<name>/``.

A submission is a Python file that registers one method with
``@register_method`` (``path/to/my_method.py``, or ``path.py:NAME`` if it
registers several), an importable module (``--method package.module`` or
``package.module:NAME``), or an installed plugin (``--method NAME``, through
the entry-point group ``unlearnbench.methods``).

It runs on the grid of a preset (``--preset NAME``: configs/NAME.toml; the
default benchmark by default), reusing the cached reference models.  Its runs
are validated by the harness — the original left untouched, the same
architecture returned with finite weights, no reach for the test data
(harness/protocol/guard.py) — and any failing run refuses the whole submission: exit
status 2, one line saying why, and no record written.  Accepted records go to
``<out>/runs/`` like any method's (marked with the submission); registered
methods missing from the grid are run too so that the ranks are complete.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from unlearnbench.methods import UnknownMethod, get_method, list_methods, method_origin, unregister_method

from .errors import UsageError
from .protocol.config import expand, grid_from_args
from .protocol.records import RecordStore, write_json_atomic, write_text_atomic
from .protocol.runner import Harness
from .report.leaderboard import (
    COMMUNITY,
    DEFINITIONS,
    REFERENCE_ORDER,
    TABLE_KEYS,
    community_dir,
    format_cell,
    load_summary,
    method_label,
    overall_ranking,
    table_label,
    table_ranks,
)
from .report.tables import table_fields
from .tomlio import dumps

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
FILE_MODULE_PREFIX = "unlearnbench_submission_"


@dataclass
class Submission:
    name: str
    info: object              # methods.MethodInfo
    load_with: list[str]      # the `submit` arguments that load it again (before the community copy)
    origin: str               # where it came from, for the README
    file: Path | None = None  # the submitted file, for file submissions


# ---- loading -----------------------------------------------------------------
def _methods_of(module_name: str) -> list:
    return [get_method(n) for n in list_methods() if get_method(n).fn.__module__ == module_name]


def _describe_failure(e: BaseException, path: Path | None) -> str:
    """``SyntaxError: invalid syntax (line 3)`` / ``line 7: NameError: ...``."""
    if isinstance(e, SyntaxError):
        return f"{type(e).__name__}: {e.msg} (line {e.lineno})"
    line = ""
    if path is not None:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        line = f"line {frames[-1].lineno}: " if frames else ""
    return f"{line}{type(e).__name__}: {e}"


def _forget_module(module_name: str) -> None:
    for info in _methods_of(module_name):
        unregister_method(info.name)
    sys.modules.pop(module_name, None)


def import_file(path: Path):
    """Import a submitted file as a module of its own (not on sys.path)."""
    if not path.is_file():
        raise UsageError(f"submission file {str(path)!r} not found")
    if path.suffix != ".py":
        raise UsageError(f"submission file {str(path)!r} is not a Python file (.py)")
    module_name = FILE_MODULE_PREFIX + re.sub(r"\W", "_", path.stem)
    _forget_module(module_name)   # a resubmission replaces the earlier import
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module   # dataclasses and typing resolve names through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        _forget_module(module_name)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise UsageError(f"cannot import submission {str(path)!r}: {_describe_failure(e, path)}") from None
    return module


def import_module(name: str):
    """Import ``package.module`` (the current folder is searched first, as ``python -m`` does)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        raise UsageError(f"cannot import module {name!r}: {_describe_failure(e, None)}") from None


def _pick(module, attr: str | None, what: str):
    """The method a module registers: the one named ``attr`` (a registered name
    or the function's name in the module), or its only one."""
    infos = _methods_of(module.__name__)
    if attr:
        obj = getattr(module, attr, None)
        for info in infos:
            if info.name == attr or (obj is not None and info.fn is obj):
                return info
        names = ", ".join(i.name for i in infos) or "none"
        raise UsageError(f"{what} registers no method {attr!r}; it registers: {names}")
    if len(infos) == 1:
        return infos[0]
    if not infos:
        raise UsageError(f"{what} registers no method; decorate the method's function with "
                         "@register_method(\"name\", hyper=Hyper) (see docs/adding-a-method.md)")
    raise UsageError(f"{what} registers several methods ({', '.join(i.name for i in infos)}); name one: {what}:NAME")


def load_submission(source: str | None, method: str | None) -> Submission:
    """Import the submission given as a file (``source``) or as ``--method``."""
    if bool(source) == bool(method):
        raise UsageError("give the submission either as a file (unlearnbench submit path/to/my_method.py) "
                         "or as --method package.module:NAME, not both or neither")
    if source:
        path_text, _, attr = source.partition(":") if not source.endswith(".py") else (source, "", "")
        path = Path(path_text)
        module = import_file(path)
        try:
            info = _pick(module, attr or None, str(path))
        except UsageError:
            _forget_module(module.__name__)
            raise
        sub = Submission(info.name, info, [source], f"the file `{path.as_posix()}`", file=path)
    elif ":" in method or ("." in method and not _is_registered(method)):
        module_name, _, attr = method.partition(":")
        module = import_module(module_name)
        info = _pick(module, attr or None, f"module {module_name!r}")
        sub = Submission(info.name, info, ["--method", method], f"the module `{module_name}`")
    else:
        try:
            info = get_method(method)
        except UnknownMethod as e:
            raise UsageError(str(e)) from None
        sub = Submission(info.name, info, ["--method", method], method_origin(method))
    try:
        _check_eligible(sub)
    except UsageError:
        unload_submission(sub)
        raise
    return sub


def unload_submission(sub: Submission) -> None:
    """Forget a file or module submission's registration (an installed plugin stays)."""
    if method_origin(sub.name) == sub.info.fn.__module__:   # neither built-in nor an installed plugin
        _forget_module(sub.info.fn.__module__)


def _is_registered(name: str) -> bool:
    try:
        get_method(name)
        return True
    except UnknownMethod:
        return False


def _check_eligible(sub: Submission) -> None:
    if not NAME_PATTERN.match(sub.name):
        raise UsageError(f"method name {sub.name!r} cannot name a community folder; "
                         "use letters, digits, '_', '-' and '.', starting with a letter or digit")
    if method_origin(sub.name) == "built-in":
        raise UsageError(f"{sub.name!r} is one of unlearnbench's own methods; "
                         f"run it with `unlearnbench run --methods {sub.name}`")
    if sub.info.reference is not None:
        raise UsageError(f"method {sub.name!r} declares reference={sub.info.reference!r}; "
                         "only the harness's own Original and Retrain rows are references")


# ---- running -----------------------------------------------------------------
class StagedStore(RecordStore):
    """Reads the real records; holds new ones in memory until :meth:`commit`,
    so a refused submission leaves no record behind."""

    def __init__(self, out):
        super().__init__(out)
        self.staged: dict[str, dict] = {}

    def write(self, record: dict) -> Path:
        self.staged[record["key"]] = record
        return self.path(record["key"])

    def commit(self) -> None:
        for record in self.staged.values():
            write_json_atomic(self.path(record["key"]), record)
        self.staged.clear()


def submission_grid(args, name: str):
    """The standard protocol: the preset's grid (default: the default
    benchmark), with only the submission's hyperparameters overridable."""
    preset = args.preset or "default"
    for item in args.method_arg or []:
        if not item.startswith(f"{name}."):
            raise UsageError(f"--method-arg {item!r}: a submission may set only its own hyperparameters "
                             f"({name}.KEY=VALUE); the other methods run as the preset says")
    options = argparse.Namespace(config=preset, method_arg=args.method_arg, out=args.out, cache_dir=args.cache_dir,
                                 data_root=args.data_root, device=args.device, download=args.download)
    return grid_from_args(options)


def _refusal(sub: Submission, spec, record: dict) -> UsageError:
    message = (record.get("message") or record["status"]).splitlines()[0]
    if record["status"] == "diverged":
        message = f"non-finite weights or loss: {message}"
    return UsageError(f"submission {sub.name!r} refused ({spec.describe()}): {message}")


def _is_protocol_violation(record: dict) -> bool:
    message = record.get("message") or ""
    return record["status"] == "diverged" or message.startswith(("InvalidResult:", "TestDataAccess:"))


def run_submission(sub: Submission, args, progress) -> dict:
    """Run the submission (then any missing registered method) on the grid;
    returns a summary of what was done.  Raises UsageError to refuse."""
    grid = submission_grid(args, sub.name)
    baseline_methods = [m for m in (grid.methods or list_methods()) if m != sub.name]
    grid.methods = [sub.name]
    specs = expand(grid)
    grid.methods = baseline_methods
    baselines = expand(grid) if baseline_methods else []
    grid.methods = [sub.name]

    harness = Harness.from_grid(grid, log=progress.log, method_progress=progress.step)  # loads the data first
    progress.total = len(specs) + sum(not harness.store.is_done(s.key) for s in baselines)
    store = StagedStore(grid.out)
    harness.store = store
    marker = {"name": sub.name, "origin": sub.origin}
    reused = 0
    for spec in specs:
        progress.begin(spec.describe())
        record = None if args.force else store.read(spec.key)
        if record is not None and record.get("status") == "ok":
            reused += 1
        else:
            record = harness.run(spec, force=True)
            if record["status"] != "ok":
                if record.get("traceback") and not _is_protocol_violation(record):
                    print(record["traceback"].rstrip(), file=sys.stderr)
                raise _refusal(sub, spec, record)
        if record.get("submission") != marker:
            store.write({**record, "submission": marker})
        progress.update(spec.describe(), "ok")
    store.commit()

    harness.store = RecordStore(grid.out)
    failed = []
    for spec in baselines:
        if harness.store.is_done(spec.key):
            continue
        progress.begin(spec.describe())
        record = harness.run(spec)
        if record["status"] != "ok":
            failed.append(f"{spec.describe()}: {record['status']}")
        progress.update(spec.describe(), record["status"])
    return {"grid": grid, "specs": specs, "reused": reused, "failed_baselines": failed}


# ---- reporting -----------------------------------------------------------------
COMPARE_METRICS = ("forget_acc", "test_acc", "mia_efficacy", "param_dist", "avg_gap", "time_s")


def comparison(out, sub_name: str, specs) -> str:
    """Plain-text tables: per table of the grid, every method's row with the
    submission marked (→) and ranked by Avg. Gap, then its overall mean rank."""
    import pandas as pd

    _, summary = load_summary(out)
    keys = [k for k in TABLE_KEYS if k != "training"]   # "training" compares records: not a run's own field
    as_key = lambda fields: tuple("" if pd.isna(fields[k]) else fields[k] for k in keys)
    wanted = {as_key(table_fields(s.to_config())) for s in specs}
    summary = summary[[as_key(r) in wanted for _, r in summary.iterrows()]]
    ranks = table_ranks(summary)["rank"]
    lines = []
    for _, rows in summary.groupby(TABLE_KEYS, dropna=False, sort=False):
        table = [["", "rank", "method"] + [DEFINITIONS[m].column for m in COMPARE_METRICS]]
        for i, r in rows.iterrows():
            rank = "ref" if r["method"] in REFERENCE_ORDER else f"{ranks[i]:.0f}" if i in ranks.index else "—"
            table.append(["→" if r["method"] == sub_name else "", rank, method_label(r, link=False)]
                         + [format_cell(r[f"{m}_mean"], r[f"{m}_ci95"], m) for m in COMPARE_METRICS])
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        n_methods = int((~rows["method"].isin(list(REFERENCE_ORDER))).sum())
        own = [f"rank {ranks[i]:.0f} of {n_methods}" + (f" ({r['variant']})" if r["variant"] else "")
               for i, r in rows.iterrows() if r["method"] == sub_name and i in ranks.index]
        lines += [f"{table_label(rows.iloc[0])}: {sub_name} {', '.join(own) or 'has no row'} by Avg. Gap", ""]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table] + [""]
    ranking = overall_ranking(summary) if not summary.empty else summary
    for _, r in (ranking[ranking["method"] == sub_name] if not ranking.empty else ranking).iterrows():
        lines.append(f"overall: {method_label(r, link=False)} is #{r['overall']} of {len(ranking)} "
                     f"(mean rank {r['mean_rank']:.2f} over {int(r['tables'])} tables, by Avg. Gap)")
    return "\n".join(lines).rstrip() + "\n"


def _hyper_markdown(specs) -> str:
    by_scenario: dict[str, dict] = {}
    for s in specs:
        by_scenario.setdefault(s.scenario.kind, s.hyper)
    distinct = {str(sorted(h.items())) for h in by_scenario.values()}
    if not any(by_scenario.values()):
        return "The method has no hyperparameters.\n"
    lines = []
    for kind, hyper in by_scenario.items():
        if len(distinct) > 1:
            lines += [f"Scenario `{kind}`:", ""]
        lines += ["| name | value |", "|---|---|"] + [f"| `{k}` | `{v!r}` |" for k, v in hyper.items()] + [""]
        if len(distinct) == 1:
            break
    return "\n".join(lines)


def write_community(sub: Submission, args, result: dict, text: str) -> Path:
    """``community/<name>/``: README (what, the exact command, hyperparameters,
    its rows at submission) and, for a file submission, a copy of the file."""
    from importlib.metadata import PackageNotFoundError, version

    out = Path(result["grid"].out)
    folder = community_dir(out) / sub.name
    root = folder.parent.parent       # the folder the command runs from (the repository, by default)
    folder.mkdir(parents=True, exist_ok=True)
    command = ["unlearnbench", "submit"]
    source_note = f"Submitted from {sub.origin}."
    if sub.file is not None:
        copy = folder / sub.file.name
        if not copy.exists() or not copy.samefile(sub.file):
            shutil.copyfile(sub.file, copy)
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()[:16]
        attr = sub.load_with[0].partition(":")[2] if not sub.load_with[0].endswith(".py") else ""
        command.append(os.path.relpath(copy, root) + (f":{attr}" if attr else ""))
        source_note += f" The file is copied here as [`{copy.name}`]({copy.name}) (sha256 `{digest}…`)."
    else:
        command += sub.load_with
        module = sub.info.fn.__module__.split(".")[0]
        try:
            source_note += f" Needs the package providing `{module}` (installed: {module} {version(module)})."
        except PackageNotFoundError:
            source_note += f" Needs `{module}` importable (installed or in the current folder)."
    if args.preset:
        command += ["--preset", args.preset]
    for item in args.method_arg or []:
        command += ["--method-arg", item]
    default_out = (root / "results").resolve()
    if out.resolve() != default_out:
        command += ["--out", os.path.relpath(out, root)]
    hyper = result["specs"][0].hyper if result["specs"] else {}
    toml = dumps({"method_args": {sub.name: hyper}}).rstrip()
    readme = "\n".join([
        f"# {sub.name}", "",
        sub.info.summary or "(no summary: the method's docstring is empty)", "",
        source_note, "",
        "## Reproduce", "",
        f"From the folder that holds `{COMMUNITY}/` and the results (the repository root by default):", "",
        "```bash", shlex.join(command), "```", "",
        f"It runs the method on every run of the preset `{args.preset or 'default'}` "
        f"({len(result['specs'])} runs), reusing cached reference models, validates it, and writes its records "
        "and the leaderboard.", "",
        "## Hyperparameters", "",
        _hyper_markdown(result["specs"]),
        "The same values as a preset table:", "", "```toml", toml, "```", "",
        "## Rows at submission", "",
        "Mean ± std over seeds, ranked by Avg. Gap among the methods recorded at the time "
        "(leaderboard.md has the current tables).", "",
        "```text", text.rstrip(), "```", "",
    ])
    write_text_atomic(folder / "README.md", readme)
    return folder

