"""Retraining runs in the registry table: what started, why, and how it ended.

One item per run, ``{pk: "MODEL#<model>", sk: "RUN#<started_at>#<run_id>"}``, written when the
run starts (``STARTED``) and updated when it ends: ``REJECTED`` (the gate said no), ``REGISTERED`` (a first version: there is no champion to
roll out against, so it waits for a person to promote it),
``PROMOTED`` / ``ROLLED_BACK`` / ``ABORTED`` (the canary's outcome), ``FAILED`` (a step failed:
the error and the step are kept) or ``REFUSED`` (another run of the model held the lock).
`runs` lists a model's runs, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlops import aws
from mlops.models.registry_store import model_pk

STATUSES = ("STARTED", "REJECTED", "REGISTERED", "PROMOTED", "ROLLED_BACK", "ABORTED", "FAILED", "REFUSED")


def run_sk(run: Mapping[str, Any]) -> str:
    """The sort key of a run's item."""
    return f"RUN#{run['started_at']}#{run['run_id']}"


class RunStore:
    """Retraining run records (RegistryTable)."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        self.dynamodb = dynamodb or aws.client("dynamodb")

    def record(self, run: Mapping[str, Any], status: str, **details: Any) -> None:
        """Write the run's record with ``status`` and ``details`` (JSON), keeping what the
        record already says."""
        if status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}")
        body = {"model": run["model"], "run_id": run["run_id"], "execution": run["owner"], "reason": run["reason"],
                "reasons": run.get("reasons", []), "window": {"start": run["start"], "end": run["end"]},
                "started_at": run["started_at"], **details}
        self.dynamodb.put_item(TableName=self.table, Item={
            "pk": {"S": model_pk(run["model"])}, "sk": {"S": run_sk(run)}, "kind": {"S": "retraining_run"},
            "status": {"S": status}, "execution": {"S": run["owner"]},
            "run": {"S": json.dumps(body, sort_keys=True, default=str)},
        })

    def runs(self, model: str, limit: int = 50) -> list[dict[str, Any]]:
        """A model's runs, newest first."""
        page = self.dynamodb.query(
            TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": {"S": model_pk(model)}, ":p": {"S": "RUN#"}},
            ScanIndexForward=False, Limit=limit)
        return [{"status": item["status"]["S"], **json.loads(item["run"]["S"])} for item in page.get("Items", [])]
