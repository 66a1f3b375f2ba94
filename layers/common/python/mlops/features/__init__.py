"""The feature store's pure logic: definitions, validation, point-in-time joins, statistics.

Nothing here touches AWS: the DynamoDB (online) and S3 (offline) store modules call these
functions with plain values and a clock.
"""
