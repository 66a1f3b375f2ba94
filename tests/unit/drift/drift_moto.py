"""The tables and buckets the drift stores use, in moto (in-process), shaped as template.yaml
declares them (DeploymentsTable keys, PredictionsTable's ``by_model_version`` index).

`atomic_conditional_writes` makes moto's conditional PutItem atomic, as DynamoDB's is: moto
reads the current item, evaluates the condition and then stores, with no lock, so two threads
can both pass ``version = :v`` and the second write silently replaces the first. The
concurrency tests would then test moto's race instead of the store's retry loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

REGION = "us-east-1"
DEPLOYMENTS_TABLE = "test-DeploymentsTable"
ARTIFACTS_BUCKET = "test-artifacts-bucket"


def create_deployments_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=DEPLOYMENTS_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "model", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "model", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )


@contextmanager
def atomic_conditional_writes() -> Iterator[None]:
    from moto.dynamodb.models.table import Table

    original = Table.put_item
    lock = threading.Lock()

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    Table.put_item = put_item
    try:
        yield
    finally:
        Table.put_item = original


@contextmanager
def drift_aws() -> Iterator[tuple[Any, Any]]:
    """(dynamodb, s3) clients of a mocked account with DeploymentsTable and an artifacts bucket."""
    with mock_aws(), atomic_conditional_writes():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        create_deployments_table(dynamodb)
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        yield dynamodb, s3
