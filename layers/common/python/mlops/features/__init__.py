"""The feature store: definitions, validation, point-in-time joins, statistics, and its stores.

Pure logic (plain values and a clock, no AWS):

* :mod:`~mlops.features.definitions` - entities, feature views, on-demand views, canonical
  JSON, content hashes and diffs for the versioned registry;
* :mod:`~mlops.features.yield_example` - the worked example's definitions;
  :mod:`~mlops.features.catalog` - the deployed definitions, by name;
* :mod:`~mlops.features.timestamps` - event times to epoch microseconds (UTC);
* :mod:`~mlops.features.validation` - ingestion rows against a view, with field-level errors;
  :mod:`~mlops.features.ingest` - request and file parsing, the answer's status;
* :mod:`~mlops.features.keys` - online entity keys, the latest row per entity;
* :mod:`~mlops.features.pit` - point-in-time joins (training sets) and the online answer at t;
* :mod:`~mlops.features.sketch` - a mergeable quantile sketch for drift baselines;
* :mod:`~mlops.features.stats` - statistics per view and day, freshness;
  :mod:`~mlops.features.freshness` - the freshness report and its alert;
* :mod:`~mlops.features.serving` - the lookup request and on-demand features;
* :mod:`~mlops.features.errors` - errors a client can act on (the API's 400s).

AWS adapters (thin):

* :mod:`~mlops.features.online_store` - DynamoDB via pynamodb: latest values, conditional
  writes, read-time TTL, batched reads (the library API inference calls);
* :mod:`~mlops.features.offline_store` - S3, Hive-partitioned, content-addressed JSON lines;
* :mod:`~mlops.features.stats_store` - daily statistics in S3;
* :mod:`~mlops.features.registry_store` - the versioned registry and view state in DynamoDB;
* :mod:`~mlops.features.store` - the four together: ingest, materialize, training sets;
  :mod:`~mlops.features.loader` - files dropped in S3.
"""
