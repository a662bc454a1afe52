"""Benchmarks of the receiver against the machine's own ceiling (issue 6): ``python -m bench``."""
