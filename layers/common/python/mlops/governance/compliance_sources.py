"""Where the compliance report's facts come from: the stack's tables and buckets, read through
the stores that own them (`RegistryStore`, `AuditStore`, `RunStore`, the drift `ReportStore`).

`gather` returns `compliance_report.ReportInputs` for one version: the version and its card,
the aliases and every alias move to or from it, the audit records of the model chain about it
(by entity, by a version named in their details, or by its artifact's sha256), the retraining
runs that registered or judged it, the latest drift report (the latest about this version, if
one of the last `DRIFT_LOOKBACK` is), and the verification of the model's audit chain (against
the archive when an archive bucket is given).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws
from mlops.audit.store import AuditStore
from mlops.drift.report_store import PREFIX as DRIFT_PREFIX
from mlops.drift.report_store import ReportStore
from mlops.governance.compliance_report import ReportInputs
from mlops.models.registry import SERVING_ALIASES, iso_utc
from mlops.models.registry_store import ModelNotFound, RegistryStore, VersionNotFound
from mlops.rollout.run_store import RunStore

DRIFT_LOOKBACK = 20  # drift reports read, newest first, looking for one about the version
RUNS_LIMIT = 200


@dataclass
class Sources:
    """The stack's names (as the functions' environment gives them) and optional clients."""

    registry_table: str
    artifacts_bucket: str
    audit_table: str
    archive_bucket: str | None = None
    dynamodb: Any = None
    s3: Any = None

    def __post_init__(self) -> None:
        self.dynamodb = self.dynamodb or aws.client("dynamodb")
        self.s3 = self.s3 or aws.client("s3")
        self.registry = RegistryStore(self.registry_table, self.artifacts_bucket, dynamodb=self.dynamodb, s3=self.s3)
        self.audit = AuditStore(self.audit_table, archive_bucket=self.archive_bucket, dynamodb=self.dynamodb, s3=self.s3)
        self.runs = RunStore(self.registry_table, dynamodb=self.dynamodb)
        self.drift_reports = ReportStore(self.artifacts_bucket, s3=self.s3)


def about_version(record: Mapping[str, Any], version: int, sha256: str | None) -> bool:
    """Whether an audit record (API form) is about ``version``: its entity ends in
    ``/<version>``, its details name the version (target, previous, challenger, champion,
    registered) or its artifact's ``sha256``."""
    if str(record.get("entity") or "").endswith(f"/{version}"):
        return True
    details = record.get("details") or {}
    if any(details.get(k) == version for k in ("version", "previous_version", "challenger", "champion", "previous")):
        return True
    registered = details.get("registered")
    if isinstance(registered, Mapping) and registered.get("version") == version:
        return True
    return sha256 is not None and sha256 in (details.get("sha256"), details.get("candidate_sha256"))


def _run_about(run: Mapping[str, Any], version: int, sha256: str | None) -> bool:
    registered = run.get("registered") or {}
    candidate = run.get("candidate") or {}
    canary = run.get("canary") or {}
    return (registered.get("version") == version or canary.get("challenger") == version
            or (sha256 is not None and candidate.get("sha256") == sha256))


def _card(sources: Sources, version: Any) -> dict[str, Any] | None:
    try:
        return json.loads(sources.registry.read_card(version, "json"))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def _latest_drift(sources: Sources, model: str, version: int) -> dict[str, Any] | None:
    """The newest drift report about ``version`` among the last `DRIFT_LOOKBACK`, else the newest."""
    keys: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": sources.artifacts_bucket, "Prefix": f"{DRIFT_PREFIX}/{model}/"}
    while True:
        page = sources.drift_reports.s3.list_objects_v2(**kwargs)
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    newest = None
    for key in sorted(keys, reverse=True)[:DRIFT_LOOKBACK]:
        body = sources.drift_reports.s3.get_object(Bucket=sources.artifacts_bucket, Key=key)["Body"].read()
        doc = {**json.loads(body), "key": key}
        newest = newest or doc
        if doc.get("version") == version:
            return doc
    return newest


def gather(sources: Sources, model: str, version: int, *, now: datetime | None = None) -> ReportInputs:
    """Everything the report of ``model`` version ``version`` shows."""
    generated_at = iso_utc(now or datetime.now(timezone.utc))
    chain = f"model:{model}"
    verification = sources.audit.verify(chain, against_archive=sources.archive_bucket is not None)
    verifications = [verification.to_api()]
    try:
        found = sources.registry.get_version(model, version)
    except (ModelNotFound, VersionNotFound) as exc:
        return ReportInputs(model, version, generated_at, None, verifications=verifications,
                            against_archive=sources.archive_bucket is not None, notes=[str(exc)])
    aliases = sources.registry.aliases(model)
    records = [r.to_api() for r in sources.audit.records(chain)]
    cited = [r for r in records if about_version(r, version, found.sha256)]
    alias_names = set(aliases) | set(SERVING_ALIASES) | {"previous"}
    alias_names |= {str(r["entity"]).split("/", 1)[1] for r in records
                    if str(r.get("entity") or "").startswith(f"alias:{model}/")}
    moves = [m.to_api() for alias in sorted(alias_names) for m in sources.registry.alias_history(model, alias)
             if version in (m.version, m.previous_version)]
    runs = [r for r in sources.runs.runs(model, limit=RUNS_LIMIT) if _run_about(r, version, found.sha256)]
    return ReportInputs(
        model=model, version_number=version, generated_at=generated_at,
        version={**found.to_api([a for a, n in aliases.items() if n == version]), "record": dict(found.record)},
        card=_card(sources, found), aliases=aliases, alias_moves=moves, audit_records=cited, runs=runs,
        drift=_latest_drift(sources, model, version), verifications=verifications,
        against_archive=sources.archive_bucket is not None)
