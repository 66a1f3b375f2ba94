"""One rollout (or retraining run) per model at a time: a lease in DeploymentsTable.

The lease is the item ``{model, sk: "LOCK#<kind>"}`` with its ``owner`` (the execution that
holds it) and ``expires_at`` (epoch seconds). `acquire` is one conditional PutItem: it wins
when no lease exists, the lease has expired (an execution that died without releasing cannot
block the model for ever), or the same owner asks again (a retried step). A second execution
is refused with `LockHeld`, naming the holder; the state machine then ends without touching
anything, so two rollouts of a model are never interleaved. `release` deletes the lease only
if the caller still owns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws

KINDS = ("retraining", "rollout")


class LockHeld(RuntimeError):
    """Another execution holds the model's lease (the message names it)."""


@dataclass(frozen=True)
class Lease:
    """A held lease."""

    model: str
    kind: str
    owner: str
    expires_at: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"model": self.model, "kind": self.kind, "owner": self.owner, "expires_at": self.expires_at}


class RolloutLock:
    """Leases per (model, kind) in the deployments table."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        self.dynamodb = dynamodb or aws.client("dynamodb")

    @staticmethod
    def _key(model: str, kind: str) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        return {"model": {"S": model}, "sk": {"S": f"LOCK#{kind}"}}

    def acquire(self, model: str, kind: str, owner: str, *, now: float, ttl_s: float) -> Lease:
        """Take the lease until ``now + ttl_s``; LockHeld if another live owner has it."""
        expires = int(now + ttl_s)
        item = {**self._key(model, kind), "owner": {"S": owner}, "expires_at": {"N": str(expires)}}
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=item,
                ConditionExpression="attribute_not_exists(sk) OR expires_at < :now OR #o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": str(int(now))}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            holder = self.holder(model, kind)
            raise LockHeld(f"{kind} of {model!r} is already running: held by "
                           f"{holder.owner if holder else 'another execution'}") from None
        return Lease(model, kind, owner, expires)

    def holder(self, model: str, kind: str) -> Lease | None:
        """The current lease, expired or not, or None."""
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(model, kind), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return Lease(model, kind, item["owner"]["S"], int(item["expires_at"]["N"]))

    def release(self, model: str, kind: str, owner: str) -> bool:
        """Drop the lease if ``owner`` holds it; False when it did not (already released)."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table, Key=self._key(model, kind),
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
