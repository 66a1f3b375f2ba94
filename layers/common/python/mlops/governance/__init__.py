"""Governance checks on models: the fairness audit and its gate (`fairness`).

Import the module you need; the package imports nothing on its own.
"""
