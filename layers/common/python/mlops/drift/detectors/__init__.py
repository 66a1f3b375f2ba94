"""Streaming drift detectors with river's API and river's detections, state in JSON.

* :class:`~mlops.drift.detectors.adwin.ADWIN` - adaptive windowing (numeric streams);
* :class:`~mlops.drift.detectors.ddm.DDM` - drift detection method (0/1 error streams);
* :class:`~mlops.drift.detectors.eddm.EDDM` - early DDM (0/1 error streams);
* :class:`~mlops.drift.detectors.page_hinkley.PageHinkley` - Page-Hinkley CUSUM;
* :class:`~mlops.drift.detectors.kswin.KSWIN` - Kolmogorov-Smirnov windowing.

:mod:`~mlops.drift.detectors.state` saves and restores any of them by kind.
"""

from mlops.drift.detectors.adwin import ADWIN
from mlops.drift.detectors.base import Detections, DriftAndWarningDetector, DriftDetector
from mlops.drift.detectors.ddm import DDM
from mlops.drift.detectors.eddm import EDDM
from mlops.drift.detectors.kswin import KSWIN
from mlops.drift.detectors.page_hinkley import PageHinkley

__all__ = ["ADWIN", "DDM", "EDDM", "KSWIN", "Detections", "DriftAndWarningDetector", "DriftDetector", "PageHinkley"]
