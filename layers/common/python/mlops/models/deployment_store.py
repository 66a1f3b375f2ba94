"""Reads and writes the deployment record (DeploymentsTable) whose schema `routing` documents."""

from __future__ import annotations

from typing import Any

from mlops import aws
from mlops.models.routing import DEPLOYMENT_SK, Deployment, deployment_from_item


class DeploymentStore:
    """The deployment records of DeploymentsTable, one per model."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        self.dynamodb = dynamodb or aws.client("dynamodb")

    def get(self, model: str) -> Deployment | None:
        """The model's deployment record, or None when it has none."""
        item = self.dynamodb.get_item(TableName=self.table,
                                      Key={"model": {"S": model}, "sk": {"S": DEPLOYMENT_SK}}).get("Item")
        return None if item is None else deployment_from_item(item)

    def set_challenger_percent(self, model: str, percent: float, *, updated_at: str) -> None:
        """Set the challenger's share of the traffic (0-100) of a record that has a challenger."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"percent must be within 0-100, got {percent}")
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"model": {"S": model}, "sk": {"S": DEPLOYMENT_SK}},
            UpdateExpression="SET challenger_percent = :p, updated_at = :t",
            ConditionExpression="attribute_exists(challenger)",
            ExpressionAttributeValues={":p": {"N": repr(float(percent))}, ":t": {"S": updated_at}},
        )
