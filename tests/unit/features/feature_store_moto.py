"""The feature store's tables and bucket in moto (in-process), for the store modules' tests.

The tables are created with the keys and TTL attribute the template declares, so that the
stores run against the same shapes as in AWS and in localcloud.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

from mlops.features.offline_store import OfflineStore
from mlops.features.online_store import OnlineStore
from mlops.features.registry_store import RegistryStore
from mlops.features.stats_store import StatsStore
from mlops.features.store import FeatureStore

REGION = "us-east-1"
FEATURES_TABLE = "test-FeaturesTable"
REGISTRY_TABLE = "test-RegistryTable"
BUCKET = "test-data-bucket"


@dataclass
class Aws:
    """Clients of the mocked account and a FeatureStore over it."""

    dynamodb: Any
    s3: Any
    store: FeatureStore

    def online_items(self) -> list[dict]:
        return self.dynamodb.scan(TableName=FEATURES_TABLE)["Items"]

    def object_keys(self, prefix: str = "") -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def create_resources(dynamodb: Any, s3: Any) -> None:
    dynamodb.create_table(
        TableName=FEATURES_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "entity_key", "AttributeType": "S"},
                              {"AttributeName": "view", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "entity_key", "KeyType": "HASH"}, {"AttributeName": "view", "KeyType": "RANGE"}],
    )
    dynamodb.update_time_to_live(TableName=FEATURES_TABLE,
                                 TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True})
    dynamodb.create_table(
        TableName=REGISTRY_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    s3.create_bucket(Bucket=BUCKET)


@contextmanager
def mocked_feature_store() -> Iterator[Aws]:
    """A fresh mocked account with the feature store's table, registry and bucket."""
    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            s3 = boto3.client("s3", region_name=REGION)
            create_resources(dynamodb, s3)
            store = FeatureStore(
                OnlineStore(FEATURES_TABLE, region=REGION),
                OfflineStore(BUCKET, client=s3),
                StatsStore(BUCKET, client=s3),
                RegistryStore(REGISTRY_TABLE, client=dynamodb),
            )
            yield Aws(dynamodb, s3, store)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
