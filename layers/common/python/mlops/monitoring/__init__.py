"""Serving monitoring: per-version statistics, SLOs and burn rates, k-sigma anomalies, data
quality at serving, and the alerts they raise.

Pure modules (numpy, no AWS): :mod:`~mlops.monitoring.version_stats`,
:mod:`~mlops.monitoring.slo`, :mod:`~mlops.monitoring.anomaly`,
:mod:`~mlops.monitoring.data_quality`. The AWS adapter: :mod:`~mlops.monitoring.alerts`
(EventBridge + SNS).
"""
