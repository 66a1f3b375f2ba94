"""Drift detection: batch tests against a training baseline, and streaming detectors.

Pure numpy, no scipy and no boto3: the drift-check function imports this package with the
small serving layer, and the AWS adapters (S3 reports, DynamoDB detector state) call it.

Batch (a current window against the baseline stored with the model version):

* :mod:`~mlops.drift.baseline` - :class:`Baseline`: quantile bins, counts, moments, a bounded
  sorted sample and category frequencies per feature, built from training data, JSON;
* :mod:`~mlops.drift.compare` - :func:`compare`: every test per feature, the chosen verdict,
  dataset drift share with Bonferroni and Holm corrections -> :class:`DriftReport`;
* :mod:`~mlops.drift.chooser` - the method and threshold per feature (Evidently's rule) and
  :class:`DriftConfig`;
* the statistics, each equal to its scipy counterpart: :mod:`~mlops.drift.ks` (+
  :mod:`~mlops.drift.kolmogorov`), :mod:`~mlops.drift.psi`, :mod:`~mlops.drift.chisquare`,
  :mod:`~mlops.drift.divergence` (KL, Jensen-Shannon), :mod:`~mlops.drift.wasserstein`,
  :mod:`~mlops.drift.correction` (= statsmodels' ``multipletests``);
* :mod:`~mlops.drift.twosample` - the one-sort merge behind KS and Wasserstein;
  :mod:`~mlops.drift.numeric` - all numeric statistics of a feature, many features threaded.

Streaming (:mod:`~mlops.drift.detectors`): ADWIN, DDM, EDDM, Page-Hinkley and KSWIN with
river's API and river's detections, whose state serialises to JSON
(:mod:`~mlops.drift.detectors.state`). :mod:`~mlops.drift.synthetic` generates streams with
known drift points.

The drift check (the drift-check function):

* :mod:`~mlops.drift.check` - one check end to end; :mod:`~mlops.drift.check_request` - its
  parameters; :mod:`~mlops.drift.concept` - the feedback error stream, fed once per value;
* the AWS adapters (botocore, never boto3): :mod:`~mlops.drift.baseline_store` (a version's
  baseline in S3, sha256 checked), :mod:`~mlops.drift.detector_store` (detector state in
  DynamoDB, conditional writes), :mod:`~mlops.drift.report_store` (reports in S3);
* :mod:`~mlops.drift.plot` - the report's PNG (matplotlib, imported only to draw).
"""

from mlops.drift.baseline import Baseline, CategoricalBaseline, NumericBaseline
from mlops.drift.chooser import DriftConfig, choose_method
from mlops.drift.compare import compare
from mlops.drift.report import DriftReport, FeatureDrift

__all__ = ["Baseline", "CategoricalBaseline", "DriftConfig", "DriftReport", "FeatureDrift", "NumericBaseline",
           "choose_method", "compare"]
