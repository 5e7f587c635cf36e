"""A throw-away unlearnbench plugin: one dataset (toy_blobs) and one architecture (tiny_net)."""
