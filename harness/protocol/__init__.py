"""One run's protocol: config and spec, data splits, reference models and their cache, the guarded
method call, the run loop and its records."""
