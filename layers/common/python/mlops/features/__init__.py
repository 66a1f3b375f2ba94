"""The feature store's pure logic: definitions, validation, point-in-time joins, statistics.

Nothing here touches AWS: the DynamoDB (online) and S3 (offline) store modules call these
functions with plain values and a clock.

* :mod:`~mlops.features.definitions` - entities, feature views, on-demand views, canonical
  JSON, content hashes and diffs for the versioned registry;
* :mod:`~mlops.features.yield_example` - the worked example's definitions;
* :mod:`~mlops.features.timestamps` - event times to epoch microseconds (UTC);
* :mod:`~mlops.features.validation` - ingestion rows against a view, with field-level errors;
* :mod:`~mlops.features.pit` - point-in-time joins (training sets) and the online answer at t;
* :mod:`~mlops.features.sketch` - a mergeable quantile sketch for drift baselines;
* :mod:`~mlops.features.stats` - statistics per view and day, freshness.
"""
