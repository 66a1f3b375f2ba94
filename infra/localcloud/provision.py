"""Creates the template's resources in moto through the AWS APIs, as CloudFormation would.

Tables keep their keys, indexes, TTL, point-in-time recovery and encryption; buckets their
versioning, encryption, public access block and the notifications of functions' S3 events;
API keys get their local values. State
machines and schedules are created by `sfn.py` and `schedule.py`, which own those services.
Properties localcloud does not know are an error naming the resource and the property.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from .errors import UnsupportedConstruct
from .template import Bucket, BucketNotification, Stack, Table

_TABLE_PROPERTIES = {
    "TableName", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes", "BillingMode", "ProvisionedThroughput", "StreamSpecification",
    "SSESpecification", "TimeToLiveSpecification", "PointInTimeRecoverySpecification", "Tags",
    "DeletionProtectionEnabled", "TableClass",
}
_BUCKET_PROPERTIES = {
    "BucketName", "VersioningConfiguration", "BucketEncryption", "PublicAccessBlockConfiguration",
    "Tags", "LifecycleConfiguration", "ObjectLockEnabled", "ObjectLockConfiguration",
    "OwnershipControls",
}


def _check(resource: str, props: dict[str, Any], known: set[str], kind: str) -> None:
    for key in props:
        if key not in known:
            raise UnsupportedConstruct(resource, f"the {kind} property {key}")


def create_table(dynamodb: Any, table: Table) -> None:
    p = table.properties
    _check(table.logical_id, p, _TABLE_PROPERTIES, "AWS::DynamoDB::Table")
    args: dict[str, Any] = {
        "TableName": table.name,
        "AttributeDefinitions": p["AttributeDefinitions"],
        "KeySchema": p["KeySchema"],
        "BillingMode": p.get("BillingMode", "PROVISIONED"),
    }
    if args["BillingMode"] == "PROVISIONED":
        args["ProvisionedThroughput"] = p.get("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "Tags"):
        if key in p:
            args[key] = p[key]
    sse = p.get("SSESpecification")
    if sse:
        args["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
    dynamodb.create_table(**args)
    ttl = p.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table.name, TimeToLiveSpecification=ttl)
    pitr = p.get("PointInTimeRecoverySpecification")
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=table.name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
            },
        )


def _object_lock_configuration(config: dict[str, Any]) -> dict[str, Any]:
    """The template's ObjectLockConfiguration for the S3 API: a retention given through a
    parameter (``Days: !Ref X``) resolves to text, which the API wants as an integer."""
    retention = (config.get("Rule") or {}).get("DefaultRetention")
    if not retention:
        return config
    retention = {k: int(v) if k in ("Days", "Years") else v for k, v in retention.items()}
    return {**config, "Rule": {**config["Rule"], "DefaultRetention": retention}}


def create_bucket(s3: Any, bucket: Bucket) -> None:
    p = bucket.properties
    _check(bucket.logical_id, p, _BUCKET_PROPERTIES, "AWS::S3::Bucket")
    args: dict[str, Any] = {"Bucket": bucket.name}
    if p.get("ObjectLockEnabled"):
        args["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**args)
    if "VersioningConfiguration" in p:
        s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]})
    if "BucketEncryption" in p:
        s3.put_bucket_encryption(
            Bucket=bucket.name,
            ServerSideEncryptionConfiguration={"Rules": [
                {("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                 for k, v in rule.items()}
                for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]},
        )
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(Bucket=bucket.name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
    if "ObjectLockConfiguration" in p:
        s3.put_object_lock_configuration(Bucket=bucket.name,
                                         ObjectLockConfiguration=_object_lock_configuration(p["ObjectLockConfiguration"]))
    if "Tags" in p:
        s3.put_bucket_tagging(Bucket=bucket.name, Tagging={"TagSet": p["Tags"]})


def configure_notifications(s3: Any, stack: Stack) -> None:
    """Give each bucket the notification configuration that SAM derives from the functions'
    S3 events: one Lambda configuration per event, with its prefix/suffix filter. moto then
    calls its S3 notification hook on matching writes, which `cloud.py` routes to the local
    Lambda runtime as an asynchronous invoke."""
    by_bucket: dict[str, list[BucketNotification]] = {}
    for n in stack.notifications:
        by_bucket.setdefault(n.bucket_name, []).append(n)
    for bucket, notifications in by_bucket.items():
        configurations = []
        for n in notifications:
            config: dict[str, Any] = {
                "Id": f"{n.function_id}{n.event_id}",
                "LambdaFunctionArn": stack.functions[n.function_id].arn,
                "Events": list(n.events),
            }
            rules = [{"Name": name, "Value": value} for name, value in (("prefix", n.prefix), ("suffix", n.suffix)) if value]
            if rules:
                config["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(config)
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": configurations}
        )


def api_key_values(stack: Stack, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The local value of each ApiKey: from ``LOCALCLOUD_<KEY_ID>`` or freshly generated."""
    env = os.environ if environ is None else environ
    return {
        logical_id: env.get(key.env_var) or secrets.token_urlsafe(30)
        for logical_id, key in stack.api_keys.items()
    }


def provision(stack: Stack, session_client: Any, api_keys: dict[str, str]) -> None:
    """Create tables, buckets, topics, queues and API keys; ``session_client(service)``
    returns a boto3 client bound to the local endpoint."""
    if stack.tables:
        dynamodb = session_client("dynamodb")
        for table in stack.tables.values():
            create_table(dynamodb, table)
    if stack.buckets:
        s3 = session_client("s3")
        for bucket in stack.buckets.values():
            create_bucket(s3, bucket)
        configure_notifications(s3, stack)
    if stack.topics:
        sns = session_client("sns")
        for name in stack.topics.values():
            sns.create_topic(Name=name)
    if stack.queues:
        sqs = session_client("sqs")
        for name in stack.queues.values():
            sqs.create_queue(QueueName=name)
    if stack.api_keys:
        apigateway = session_client("apigateway")
        for logical_id, key in stack.api_keys.items():
            apigateway.create_api_key(name=logical_id, value=api_keys[logical_id], enabled=key.enabled)
