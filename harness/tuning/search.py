"""The search behind ``unlearnbench tune``: one Optuna study per method × table.

The design in full: docs/design-notes.md#tuningsearch.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

from unlearnbench.methods import Choice, IntRange, LogUniform, Uniform

from ..errors import UsageError
from ..protocol.spec import Scenario, derive_seed

HEARTBEAT_S = 10          # a running trial records a heartbeat this often ...
GRACE_S = 60              # ... and is failed as stale when its last one is older than this
DUPLICATE_LIMIT = 10      # duplicates (× target) after which a space counts as exhausted
POLL_S = 5.0              # a worker with nothing to start waits this long before looking again


def startup_trials(budget: int) -> int:
    """Complete trials drawn at random before TPE models the rest: a third of
    the budget, at least 2 (trial 0 and one draw)."""
    return max(2, budget // 3)


def round_significant(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def distributions(space: dict, defaults: dict) -> dict:
    """Optuna distributions of a method's declared space (``LogUniform`` →
    log-float, ``Uniform`` → float, ``IntRange`` → int, ``Choice`` →
    categorical, with the registered default among its choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, dist in space.items():
        d = defaults[name]
        if isinstance(dist, Choice):
            out[name] = CategoricalDistribution(dist.values + (() if d in dist.values else (d,)))
        elif isinstance(dist, IntRange):
            out[name] = IntDistribution(dist.low, dist.high)
        elif isinstance(dist, (LogUniform, Uniform)):
            log = isinstance(dist, LogUniform)
            if log and not d > 0:
                raise UsageError(f"{name}: default {d!r} lies outside the log-uniform space {dist} "
                                 "(a log scale needs positive values)")
            out[name] = FloatDistribution(dist.low, dist.high, log=log)
        else:
            raise TypeError(f"{name}: unknown search distribution {dist!r}")
    return out


@dataclass
class Study:
    """One method × table: its Optuna study and what its trials vary."""

    name: str
    method: str
    dataset: str
    model: str
    scenario: Scenario
    target: int                   # complete trials wanted: the budget, 1 when there is nothing to tune
    defaults: dict                # the searched hyperparameters at their registered defaults (trial 0)
    space: dict = field(default_factory=dict)   # hyperparameter -> Optuna distribution

    @property
    def label(self) -> str:
        return f"{self.method} {self.dataset}/{self.model} {self.scenario.label}"


def open_storage(url: str, option: str = "--storage"):
    """The RDB storage at ``url``; a URL it cannot open is a UsageError."""
    import optuna

    kwargs = {"connect_args": {"timeout": 300}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
    except Exception as e:   # sqlalchemy: unknown dialect, unparsable URL, unreachable or unwritable database
        reason = " ".join(str(e).split("\n")[0].split())
        raise UsageError(f"{option} {url!r} cannot be opened ({type(e).__name__}: {reason}); accepted: an "
                         "SQLAlchemy database URL, e.g. sqlite:///results/tuning/studies.db") from None


def load(storage, study: Study, sampler=None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study.name, storage=storage, sampler=sampler)


def prepare(storage, study: Study) -> None:
    """Create the study if it is new, and queue trial 0 (the defaults) unless
    a trial of the defaults is complete, running or already queued."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(study_name=study.name, storage=storage, direction="minimize", load_if_exists=True)
    fail_stale(storage, s)
    alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    if not any(t.user_attrs.get("defaults") for t in s.get_trials(deepcopy=False, states=alive)):
        s.enqueue_trial(dict(study.defaults), user_attrs={"defaults": True})


def fail_stale(storage, study) -> None:
    """Mark as failed the running trials whose worker died: those whose
    heartbeat stopped more than ``GRACE_S`` ago (Optuna's own check), and those
    that started that long ago without a configuration (the worker died
    between taking the trial and its first heartbeat)."""
    import datetime

    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=GRACE_S)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "values" not in t.user_attrs and "pruned" not in t.user_attrs and t.datetime_start < cutoff:
            trial_id = storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(study.study_name), t.number)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)


@dataclass
class Counts:
    complete: int = 0
    running: int = 0
    failed: int = 0
    surplus: int = 0
    duplicates: int = 0

    def exhausted(self, target: int) -> bool:
        return self.duplicates >= DUPLICATE_LIMIT * target


def counts(trials) -> Counts:
    from optuna.trial import TrialState

    c = Counts()
    for t in trials:
        if t.state == TrialState.COMPLETE:
            c.complete += 1
        elif t.state == TrialState.RUNNING:
            c.running += 1
        elif t.state == TrialState.FAIL:
            c.failed += 1
        elif t.state == TrialState.PRUNED:
            if t.user_attrs.get("pruned") == "surplus":
                c.surplus += 1
            else:
                c.duplicates += 1
    return c


def _suggest(trial, name: str, dist):
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_int(name, dist.low, dist.high)


def suggest(trial, study: Study) -> dict:
    """The configuration of a trial: the defaults for trial 0 (exactly),
    else the sampler's values, floats rounded to 3 significant digits."""
    with warnings.catch_warnings():    # trial 0's defaults may lie outside the declared space
        warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
        raw = {name: _suggest(trial, name, dist) for name, dist in study.space.items()}
    if trial.user_attrs.get("defaults"):
        return dict(study.defaults)
    return {k: round_significant(v) if isinstance(v, float) else v for k, v in raw.items()}


Evaluate = Callable[[Study, dict], "tuple[float, dict]"]   # (study, values) -> (score, details for the history)


def objective(study: Study, evaluate: Evaluate, log) -> Callable:
    def run(trial) -> float:
        from optuna import TrialPruned
        from optuna.trial import TrialState

        others = [t for t in trial.study.get_trials(deepcopy=False) if t.number != trial.number]
        ahead = sum(t.state == TrialState.COMPLETE or (t.state == TrialState.RUNNING and t.number < trial.number)
                    for t in others)
        if ahead >= study.target:
            trial.set_user_attr("pruned", "surplus")
            raise TrialPruned("budget reached")
        values = suggest(trial, study)
        same = [t.number for t in others if t.state in (TrialState.COMPLETE, TrialState.RUNNING)
                and t.user_attrs.get("values") == values]
        if same:
            trial.set_user_attr("pruned", f"duplicate of trial {same[0]}")
            raise TrialPruned(f"duplicate of trial {same[0]}")
        trial.set_user_attr("values", values)
        t0 = time.perf_counter()
        score, details = evaluate(study, values)
        for key, value in details.items():
            trial.set_user_attr(key, value)
        log(f"  {study.label} trial {trial.number}{' (defaults)' if trial.user_attrs.get('defaults') else ''}: "
            f"{', '.join(f'{k}={v}' for k, v in values.items()) or 'nothing to tune'} -> {score:.4g} "
            f"[{time.perf_counter() - t0:.1f} s]")
        return score

    return run


def optimize(storage, studies: list[Study], evaluate: Evaluate, seed: int = 0, worker: int = 0,
             log=lambda msg: None, on_done=lambda study: None, poll_s: float = POLL_S) -> None:
    """Work on ``studies`` until each has its target of complete trials (or
    its space is exhausted): start trials while complete + running trials
    are short of the target, move on while other workers' trials would fill
    it, and come back until they have.  ``on_done(study)`` is called once per
    study, when it is complete.  An exception in ``evaluate`` fails its
    trial and propagates."""
    import optuna
    from optuna.samplers import TPESampler

    pending = list(studies)
    while pending:
        progressed = False
        for study in list(pending):
            while True:
                s = load(storage, study)
                fail_stale(storage, s)
                trials = s.get_trials(deepcopy=False)
                c = counts(trials)
                if c.complete >= study.target or c.exhausted(study.target):
                    pending.remove(study)
                    on_done(study)
                    break
                if c.complete + c.running >= study.target:
                    break    # other workers' trials may fill it: look again later
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    sampler = TPESampler(seed=derive_seed(seed, "tpe", study.name, worker, len(trials)) % 2 ** 32,
                                         n_startup_trials=startup_trials(study.target), multivariate=True,
                                         constant_liar=True)
                    load(storage, study, sampler).optimize(objective(study, evaluate, log), n_trials=1, catch=())
                progressed = True
        if pending and not progressed:
            time.sleep(poll_s)


def result(storage, study: Study, score_name: str = "score") -> dict:
    """The complete trials of a study (history, in trial order), its best
    one (lowest score; the earlier on a tie), trial 0 and the counts."""
    from optuna.trial import TrialState

    trials = load(storage, study).get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    history = []
    for t in complete:
        entry = {"trial": t.number, score_name: t.value}
        if t.user_attrs.get("defaults"):
            entry["defaults"] = True
        entry.update(t.user_attrs.get("values", {}))
        for key in ("per_seed", "failures", "noop"):
            if t.user_attrs.get(key):
                entry[key] = t.user_attrs[key]
        history.append(entry)
    best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
    defaults = next((t for t in complete if t.user_attrs.get("defaults")), None)
    return {"history": history, "counts": counts(trials),
            "best": dict(best.user_attrs.get("values", {})) if best else None,
            "best_trial": best.number if best else None, "best_score": best.value if best else None,
            "default_score": defaults.value if defaults else None}
