"""TOML is written in one place (harness/tomlio.py, by tomli-w): nested tables,
NaN and infinities as TOML's nan/inf, None left out, and a round trip."""
import math

import pytest

from unlearnbench.harness.tomlio import dumps, tomllib


def test_nested_tables_nan_inf_and_none_round_trip():
    doc = {"hyper": {"random 10%": {"finetune": {"lr": 0.1, "epochs": 3, "betas": (0.9, 0.99), "name": 'a"b',
                                                 "off": None}}},
           "tuning": {"random 10%": {"finetune": {"best": math.nan, "worst": math.inf, "low": -math.inf,
                                                  "history": [{"trial": 0, "avg_gap": math.inf}], "flag": True}}}}
    text = dumps(doc, comment="first line\nsecond line")
    assert text.startswith("# first line\n# second line\n\n")
    assert '[hyper."random 10%".finetune]' in text and '[tuning."random 10%".finetune]' in text
    assert "best = nan" in text and "worst = inf" in text and "low = -inf" in text
    assert "off" not in text                                   # TOML has no null: the key is left out
    back = tomllib.loads(text)
    fine = back["hyper"]["random 10%"]["finetune"]
    assert fine == {"lr": 0.1, "epochs": 3, "betas": [0.9, 0.99], "name": 'a"b'}
    tuning = back["tuning"]["random 10%"]["finetune"]
    assert math.isnan(tuning["best"]) and tuning["worst"] == math.inf and tuning["low"] == -math.inf
    assert tuning["history"] == [{"trial": 0, "avg_gap": math.inf}] and tuning["flag"] is True


def test_what_toml_cannot_hold_is_refused():
    with pytest.raises(TypeError):
        dumps({"a": [1, None]})
    with pytest.raises(TypeError):
        dumps({"a": object()})
