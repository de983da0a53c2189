"""Benchmarks. Each measures its own baseline in the same run and prints figures and ratios."""
