"""Metric definitions (one MetricDef per column), the evaluation pass, statistics, the MIA noise
floor and the challenge score."""
