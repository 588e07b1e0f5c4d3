"""Evaluation with lighteval: offline tiny suites, the published SmolLM3 suites, comparison with published numbers.

Usage: python -m eval {run,compare,suites} --help
"""
