"""Governance of models: the fairness audit and its gate (`fairness`), and one version's
compliance report for auditors (`compliance_report`, rendered from what `compliance_sources`
gathers through the stores).

Import the module you need; the package imports nothing on its own.
"""
