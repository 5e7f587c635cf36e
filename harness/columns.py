"""The columns of the summary tables, shared by the leaderboard, the figures,
the forgetting-quality section and ``submit``'s comparison: what identifies a
table, which metrics its rows report, the reference rows that open every
table, and how variants of one method are told apart."""

TABLE_KEYS = ["dataset", "model", "scenario_kind", "ratio", "forget_class", "train_subset", "test_subset"]
METRICS = ["retain_acc", "forget_acc", "test_acc", "unlearn_acc", "test_acc_forget_class",
           "test_acc_other_classes", "mia_efficacy", "mia_entropy", "param_dist", "param_dist_rel",
           "js_forget", "avg_gap", "avg_gap_muso", "param_dist_floor_ratio", "time_s", "rte"]
REFERENCE_ORDER = {"original": 0, "retrain": 1}


def variant_label(hyper: dict, others: list[dict]) -> str:
    """Label a hyperparameter variant by the values in which it differs from
    the other variants of the same method (empty if there is only one)."""
    keys = sorted({k for o in others for k in o if any(o.get(k) != p.get(k) for p in others)})
    return ", ".join(f"{k}={hyper.get(k)}" for k in keys)
