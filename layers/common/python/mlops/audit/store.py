"""The audit chains in DynamoDB (AuditTable) and their archive in S3 (AuditArchiveBucket).

One item per record, keyed by ``chain`` (hash) and ``seq`` (range); see `mlops.audit.chain`
for the chains and the hashes:

==========================  ==============================================================
``prev_hash``, ``hash``     the chain links (hex sha256)
``action``, ``actor``, ``at``  the event; ``at`` is ISO-8601 UTC with microseconds
``model``, ``entity``       present only when the event names them: hash keys of the sparse
                            GSIs ``by_model`` and ``by_entity`` (range key ``at``)
``details``                 the event's details, canonical JSON text
==========================  ==============================================================

Appending never forks or drops the chain: the writer reads the head (a consistent query,
newest first, limit 1; a warm writer starts from the last record it wrote) and puts record
head + 1 on condition ``attribute_not_exists(seq)``. When another writer took that seq first,
DynamoDB refuses the put and returns the winner's item (``ReturnValuesOnConditionCheckFailure``),
which becomes the new head; the writer waits a jittered, growing pause and tries the next seq
(after `CATCH_UP_AFTER` lost races in a row it reads the head again rather than walk up to
it). It gives up with AuditConflict after `MAX_SECONDS`, so a handler still answers in time.
Items are only ever put, never updated or deleted, so the functions that append get no
DeleteItem permission.

Queries: ``chain`` reads the chain in seq order; ``entity`` or ``model`` read their index in
time order; with none of them the table is scanned (no order).

The archive copies each chain to S3 as JSON lines, one object per seq range:
``audit/<chain with ':' as '/'>/<first seq:012d>-<last seq:012d>.jsonl``. An archive run reads
where the archive ends (the listing's last key and that object's last line), verifies the
new records against it and writes them in objects of at most `ARCHIVE_BLOCK` records that end
on block boundaries. Running it again writes nothing new; two runs at once write the same
records twice at worst, and readers take each seq once. The bucket has Object Lock
(governance mode, default retention in the template), so archived records cannot be
overwritten or deleted within the retention period; `verify` can take their hashes as anchors,
which exposes even a deleted or rewritten last record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops import aws
from mlops.audit.chain import AuditRecord, Verification, canonical_json, link, verify
from mlops.audit.chain import chain_for as default_chain_for
from mlops.audit.events import AuditEvent

BY_MODEL = "by_model"
BY_ENTITY = "by_entity"
MAX_ATTEMPTS = 200
MAX_SECONDS = 5.0  # an append gives up after this long (a Lambda must still answer in time)
CATCH_UP_AFTER = 8  # lost races in a row after which the head is read again
MAX_LIMIT = 1000
ARCHIVE_BLOCK = 1000
ARCHIVE_PREFIX = "audit/"
_KEY_NAMES = {"chain", "seq", "model", "entity", "at"}


class AuditConflict(RuntimeError):
    """Other writers kept taking the next seq; the event was not recorded."""


class AuditChainBroken(RuntimeError):
    """The chain does not verify, so it is not archived; ``verification`` names the first bad record."""

    def __init__(self, verification: Verification) -> None:
        bad = verification.first_bad
        assert bad is not None
        super().__init__(f"chain {verification.chain!r} is broken at seq {bad.seq} ({bad.kind}): {bad.detail}")
        self.verification = verification


class BadPageToken(ValueError):
    """A ``next`` token that this store did not hand out."""


def record_item(record: AuditRecord) -> dict[str, Any]:
    """The DynamoDB item of a record."""
    e = record.event
    item: dict[str, Any] = {
        "chain": {"S": record.chain}, "seq": {"N": str(record.seq)},
        "prev_hash": {"S": record.prev_hash}, "hash": {"S": record.hash},
        "action": {"S": e.action}, "actor": {"S": e.actor}, "at": {"S": e.at},
        "details": {"S": canonical_json(dict(e.details))},
    }
    if e.model is not None:
        item["model"] = {"S": e.model}
    if e.entity is not None:
        item["entity"] = {"S": e.entity}
    return item


def record_from_item(item: Mapping[str, Any]) -> AuditRecord:
    """A record from its item, as stored (tampered or not)."""

    def s(name: str) -> str | None:
        attr = item.get(name)
        return attr.get("S") if attr else None

    details_text = s("details")
    try:
        details = json.loads(details_text) if details_text else {}
    except ValueError:
        details = {"unparseable": details_text}  # a tampered item: verification will say so
    event = AuditEvent(action=s("action") or "", actor=s("actor") or "", at=s("at") or "",
                       model=s("model"), entity=s("entity"), details=details)
    return AuditRecord(s("chain") or "", int(item["seq"]["N"]), s("prev_hash") or "", s("hash") or "", event)


def _query_id(**query: Any) -> str:
    """A short fingerprint of a query's filters, so a page token only continues its own query."""
    return hashlib.sha256(canonical_json(query).encode()).hexdigest()[:16]


def encode_token(key: Mapping[str, Any], query_id: str = "") -> str:
    """A page token for the client: DynamoDB's LastEvaluatedKey and the query it belongs to,
    as base64url JSON."""
    return base64.urlsafe_b64encode(canonical_json({"k": dict(key), "q": query_id}).encode()).decode().rstrip("=")


def decode_token(token: str, query_id: str | None = None) -> dict[str, Any]:
    """The ExclusiveStartKey of a token from `encode_token` (of the query ``query_id``, when
    given); BadPageToken otherwise."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise BadPageToken("not a page token of this API") from None
    key = data.get("k") if isinstance(data, dict) else None
    ok = (isinstance(key, dict) and set(key) <= _KEY_NAMES and {"chain", "seq"} <= set(key)
          and all(isinstance(v, dict) and len(v) == 1 and set(v) <= {"S", "N"}
                  and isinstance(next(iter(v.values())), str) for v in key.values()))
    if not ok:
        raise BadPageToken("not a page token of this API")
    if query_id is not None and data.get("q") != query_id:
        raise BadPageToken("the page token belongs to another query")
    return key


def archive_prefix(chain: str) -> str:
    """Where a chain's archive objects live: ``audit/model/yield/``."""
    return ARCHIVE_PREFIX + chain.replace(":", "/") + "/"


def archive_key(chain: str, first: int, last: int) -> str:
    return f"{archive_prefix(chain)}{first:012d}-{last:012d}.jsonl"


def _pause(attempt: int) -> None:
    """Full jitter: a random wait up to 5 ms x 2^attempt, at most half a second. Long enough
    that the losers of a race get out of the winner's way (measured: with 8 writers on one
    chain, about 1.1 puts per record, against 3-4 with waits of a few milliseconds)."""
    time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** min(attempt, 7))))


@dataclass(frozen=True)
class AuditPage:
    """One page of a query: records and the token of the next page (None at the end)."""

    records: list[AuditRecord]
    next_token: str | None

    def to_api(self) -> dict[str, Any]:
        return {"records": [r.to_api() for r in self.records], "next": self.next_token}


@dataclass(frozen=True)
class ArchiveResult:
    """What one archive run wrote for a chain."""

    chain: str
    archived: int
    objects: list[str]
    archived_to: int

    def to_api(self) -> dict[str, Any]:
        return {"chain": self.chain, "archived": self.archived, "objects": self.objects,
                "archived_to": self.archived_to}


class AuditStore:
    """Append, query, verify and archive audit chains; see the module docstring.

    ``archive_bucket`` is needed only to archive or to verify against the archive.
    """

    def __init__(self, table: str, *, archive_bucket: str | None = None, dynamodb: Any = None, s3: Any = None,
                 max_attempts: int = MAX_ATTEMPTS, max_seconds: float = MAX_SECONDS) -> None:
        self.table = table
        self.archive_bucket = archive_bucket
        self._dynamodb = dynamodb
        self._s3 = s3
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self._heads: dict[str, AuditRecord] = {}  # the last record written or seen per chain

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = aws.client("dynamodb")
        return self._dynamodb

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = aws.client("s3")
        return self._s3

    # ------------------------------------------------------------------ writes
    def head(self, chain: str) -> AuditRecord | None:
        """The chain's last record (a consistent read), None for an empty chain."""
        page = self.dynamodb.query(
            TableName=self.table, KeyConditionExpression="#c = :c", ExpressionAttributeNames={"#c": "chain"},
            ExpressionAttributeValues={":c": {"S": chain}}, ScanIndexForward=False, Limit=1, ConsistentRead=True)
        items = page.get("Items") or []
        return record_from_item(items[0]) if items else None

    def append(self, event: AuditEvent, *, chain: str | None = None) -> AuditRecord:
        """Record ``event`` at the end of its chain (`chain_for` unless given); returns the
        stored record. Raises AuditConflict after ``max_attempts`` lost races or ``max_seconds``.

        The head is the one this store last wrote or saw (a warm function appending again
        skips the read), else a consistent read; a stale head only costs a refused put, whose
        answer is the newer record to link to.
        """
        chain = chain or default_chain_for(event)
        head = self._heads.get(chain) or self.head(chain)
        give_up = time.monotonic() + self.max_seconds
        for attempt in range(self.max_attempts):
            record = link(chain, head, event)
            try:
                self.dynamodb.put_item(TableName=self.table, Item=record_item(record),
                                       ConditionExpression="attribute_not_exists(seq)",
                                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                winner = exc.response.get("Item")
                if time.monotonic() > give_up:
                    break
                _pause(attempt)
                if winner and (attempt + 1) % CATCH_UP_AFTER:
                    head = record_from_item(winner)  # link after the record that took this seq
                else:
                    head = self.head(chain)  # a losing streak: others are ahead, read where the chain is now
                continue
            self._heads[chain] = record
            return record
        raise AuditConflict(f"could not append to chain {chain!r}: {attempt + 1} lost races")

    # ------------------------------------------------------------------ reads
    def records(self, chain: str, *, after_seq: int = 0, consistent: bool = True) -> Iterator[AuditRecord]:
        """The chain's records with seq > ``after_seq``, in seq order."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "#c = :c AND #s > :s",
            "ExpressionAttributeNames": {"#c": "chain", "#s": "seq"},
            "ExpressionAttributeValues": {":c": {"S": chain}, ":s": {"N": str(after_seq)}},
            "ConsistentRead": consistent,
        }
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                yield record_from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _scan(self, **extra: Any) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True, **extra}
        while True:
            page = self.dynamodb.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def chains(self) -> list[str]:
        """Every chain that holds a record (a scan of the keys: O(records))."""
        items = self._scan(ProjectionExpression="#c", ExpressionAttributeNames={"#c": "chain"})
        return sorted({item["chain"]["S"] for item in items})

    def query(self, *, entity: str | None = None, model: str | None = None, chain: str | None = None,
              start: str | None = None, end: str | None = None, limit: int = 100,
              next_token: str | None = None) -> AuditPage:
        """Records matching every filter given, at most ``limit`` per page.

        With ``chain``: that chain in seq order. Else with ``entity`` (or ``model``): the
        ``by_entity`` (``by_model``) index in time order. With none of them: a scan (unordered).
        ``start``/``end`` are `iso_utc` texts, both inclusive. Raises BadPageToken.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}, got {limit}")
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        time_cond = ""
        if start is not None or end is not None:  # times are fixed-width: "~" sorts after any of them
            names["#at"] = "at"
            values.update({":lo": {"S": start or ""}, ":hi": {"S": end or "~"}})
            time_cond = "#at BETWEEN :lo AND :hi"
        filters: list[str] = []

        def match(attr: str, value: str | None) -> None:
            if value is not None:
                names[f"#{attr}"] = attr
                values[f":{attr}"] = {"S": value}
                filters.append(f"#{attr} = :{attr}")

        kwargs: dict[str, Any] = {"TableName": self.table}
        if chain is not None:
            names["#chain"] = "chain"
            values[":chain"] = {"S": chain}
            kwargs["KeyConditionExpression"] = "#chain = :chain"
            filters.append(time_cond)
            match("entity", entity)
            match("model", model)
            op = self.dynamodb.query
        elif entity is not None or model is not None:
            index, attr, value = (BY_ENTITY, "entity", entity) if entity is not None else (BY_MODEL, "model", model)
            names[f"#{attr}"] = attr
            values[f":{attr}"] = {"S": value}
            kwargs["IndexName"] = index
            kwargs["KeyConditionExpression"] = f"#{attr} = :{attr}" + (f" AND {time_cond}" if time_cond else "")
            if entity is not None:
                match("model", model)
            op = self.dynamodb.query
        else:
            filters.append(time_cond)
            op = self.dynamodb.scan
        filters = [f for f in filters if f]
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if names:
            kwargs["ExpressionAttributeNames"] = names
            kwargs["ExpressionAttributeValues"] = values
        query_id = _query_id(entity=entity, model=model, chain=chain, start=start, end=end)
        if next_token:
            kwargs["ExclusiveStartKey"] = decode_token(next_token, query_id)
        found: list[AuditRecord] = []
        while True:
            kwargs["Limit"] = limit - len(found)  # a page never holds more than what is still wanted
            page = op(**kwargs)
            found.extend(record_from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if last is None:
                return AuditPage(found, None)
            if len(found) >= limit:
                return AuditPage(found, encode_token(last, query_id))
            kwargs["ExclusiveStartKey"] = last

    # ------------------------------------------------------------------ verification
    def verify(self, chain: str, *, against_archive: bool = False) -> Verification:
        """Verify one chain (a consistent read of all its records), optionally with the
        archive's hashes as anchors."""
        anchors = self.archived_hashes(chain) if against_archive else None
        return verify(list(self.records(chain)), chain=chain, anchors=anchors)

    def verify_all(self, *, against_archive: bool = False) -> list[Verification]:
        """Verify every chain (one consistent scan of the table)."""
        by_chain: dict[str, list[AuditRecord]] = {}
        for item in self._scan():
            record = record_from_item(item)
            by_chain.setdefault(record.chain, []).append(record)
        out = []
        for chain in sorted(by_chain):
            records = sorted(by_chain[chain], key=lambda r: r.seq)
            anchors = self.archived_hashes(chain) if against_archive else None
            out.append(verify(records, chain=chain, anchors=anchors))
        return out

    # ------------------------------------------------------------------ archive
    def _bucket(self) -> str:
        if not self.archive_bucket:
            raise ValueError("no archive bucket configured (AUDIT_ARCHIVE_BUCKET)")
        return self.archive_bucket

    def _archive_keys(self, chain: str) -> list[str]:
        keys: list[str] = []
        kwargs = {"Bucket": self._bucket(), "Prefix": archive_prefix(chain)}
        while True:
            page = self.s3.list_objects_v2(**kwargs)
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return sorted(keys)
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _archive_lines(self, key: str) -> list[AuditRecord]:
        body = self.s3.get_object(Bucket=self._bucket(), Key=key)["Body"].read().decode("utf-8")
        return [AuditRecord.from_api(json.loads(line)) for line in body.splitlines() if line.strip()]

    def archived_records(self, chain: str) -> list[AuditRecord]:
        """The chain's archived records, each seq once, in seq order."""
        by_seq: dict[int, AuditRecord] = {}
        for key in self._archive_keys(chain):
            for record in self._archive_lines(key):
                by_seq.setdefault(record.seq, record)
        return [by_seq[s] for s in sorted(by_seq)]

    def archived_hashes(self, chain: str) -> dict[int, str]:
        return {r.seq: r.hash for r in self.archived_records(chain)}

    def archive(self, chain: str, *, block: int = ARCHIVE_BLOCK) -> ArchiveResult:
        """Copy the chain's records that the archive lacks to S3 (see the module docstring).
        Raises AuditChainBroken, writing nothing, when the new records do not verify."""
        bucket = self._bucket()
        keys = self._archive_keys(chain)
        after: tuple[int, str] | None = None
        if keys:
            last = self._archive_lines(keys[-1])[-1]
            after = (last.seq, last.hash)
        new = list(self.records(chain, after_seq=after[0] if after else 0))
        check = verify(new, chain=chain, after=after)
        if not check.ok:
            raise AuditChainBroken(check)
        written: list[str] = []
        i = 0
        while i < len(new):
            first = new[i].seq
            block_end = ((first - 1) // block + 1) * block
            chunk = [r for r in new[i:i + block] if r.seq <= block_end]
            key = archive_key(chain, chunk[0].seq, chunk[-1].seq)
            body = "".join(canonical_json(r.to_api()) + "\n" for r in chunk).encode("utf-8")
            # Object Lock needs an integrity checksum on every put.
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                               ChecksumAlgorithm="SHA256")
            written.append(key)
            i += len(chunk)
        archived_to = new[-1].seq if new else (after[0] if after else 0)
        return ArchiveResult(chain, len(new), written, archived_to)
