"""Equal-budget hyperparameter search: the Optuna study, the tune command's driver, the shipped
presets and the tuning report."""
