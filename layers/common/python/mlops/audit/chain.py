"""Hash chains of audit records: canonical encoding, hashes, linking and verification (pure).

Records live in chains (see `chain_for`): ``model:<name>`` holds every governance event of one
model (registrations, alias moves, approvals, deployment weights, rollout decisions,
retraining runs), ``predictions:<name>`` its audited predictions (high volume, kept apart so
they never slow down governance writes), and ``system`` everything that names no model
(offline-store reads, admin calls about no model).

Inside a chain, records are numbered ``seq`` = 1, 2, 3 ... without gaps. Record n holds
``prev_hash`` (record n - 1's hash; `GENESIS` for n = 1) and its own ``hash``: the sha256 of
the canonical JSON of ``{chain, seq, prev_hash, content}``. So changing any field, the
position or the chain of a record changes its hash, and rewriting that hash breaks the next
record's link. `verify` walks a chain and names the first bad record and how it is bad:

=================  ===================================================================
``missing``        a seq is absent (a record was deleted)
``modified``       a record's content does not match its hash, or its hash was rewritten
                   (the next record is linked to a different one), or it differs from
                   its archived copy
``reordered``      a record sits at another position than the one it was written at
``duplicate``      two records with the same seq (only in a list given by hand)
``broken_link``    the first record does not start from `GENESIS`
=================  ===================================================================

What a chain alone cannot show: the last records deleted, or the last record rewritten with a
fresh hash, since no later record commits to them. The S3 archive (Object Lock) closes that
gap: `verify` takes the archived hashes as ``anchors``.

>>> from mlops.audit.events import AuditEvent
>>> events = [AuditEvent.create("approval.set", "alice", model="yield", details={"n": i},
...                             at="2026-01-05T09:00:00Z") for i in range(3)]
>>> records = []
>>> for e in events:
...     records.append(link("model:yield", records[-1] if records else None, e))
>>> [r.seq for r in records], records[1].prev_hash == records[0].hash
([1, 2, 3], True)
>>> verify(records).ok
True
>>> tampered = [records[0], records[1].with_event(events[0]), records[2]]
>>> verify(tampered).first_bad
Problem(seq=2, kind='modified', detail="the record's content does not match its hash")
>>> verify([records[0], records[2]]).first_bad.kind
'missing'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mlops.audit.events import PREDICTION, AuditEvent
from mlops.models.registry import model_name_problem

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"
_CHAIN = re.compile(r"^(model|predictions):(.+)$")


def canonical_json(value: Any) -> str:
    """The one text of a JSON value: keys sorted, no spaces, UTF-8 as is, no NaN.

    >>> canonical_json({"b": 1.5, "a": [None, "é"]})
    '{"a":[null,"é"],"b":1.5}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(chain: str, seq: int, prev_hash: str, content: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a record: its chain, place, link and content."""
    text = canonical_json({"chain": chain, "seq": seq, "prev_hash": prev_hash, "content": content})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_for(event: AuditEvent) -> str:
    """The chain an event goes to: ``predictions:<model>``, ``model:<model>`` or ``system``."""
    if event.model is None:
        return SYSTEM_CHAIN
    return f"predictions:{event.model}" if event.action == PREDICTION else f"model:{event.model}"


def chain_problem(chain: Any) -> str | None:
    """Why ``chain`` cannot name a chain, or None."""
    if chain == SYSTEM_CHAIN:
        return None
    match = _CHAIN.match(chain) if isinstance(chain, str) else None
    if match is None or model_name_problem(match.group(2)):
        return "expected 'system', 'model:<model name>' or 'predictions:<model name>'"
    return None


@dataclass(frozen=True)
class AuditRecord:
    """An event at its place in a chain."""

    chain: str
    seq: int
    prev_hash: str
    hash: str
    event: AuditEvent

    def computed_hash(self) -> str:
        """The hash this record's fields give (equal to ``hash`` unless it was tampered with)."""
        return record_hash(self.chain, self.seq, self.prev_hash, self.event.content())

    def with_event(self, event: AuditEvent) -> "AuditRecord":
        """The same record holding another event (and its old hash): a tampered copy, for tests."""
        return replace(self, event=event)

    def to_api(self) -> dict[str, Any]:
        """JSON form (also a line of the S3 archive)."""
        return {"chain": self.chain, "seq": self.seq, "prev_hash": self.prev_hash, "hash": self.hash,
                **self.event.content()}

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> "AuditRecord":
        """Back from `to_api` (no checks: verification is what tells whether to trust it)."""
        event = AuditEvent(action=obj["action"], actor=obj["actor"], at=obj["at"], model=obj.get("model"),
                           entity=obj.get("entity"), details=obj.get("details") or {})
        return cls(obj["chain"], int(obj["seq"]), obj["prev_hash"], obj["hash"], event)


def link(chain: str, head: AuditRecord | None, event: AuditEvent) -> AuditRecord:
    """The record that appends ``event`` after ``head`` (the chain's last record, None when
    the chain is empty)."""
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.hash
    return AuditRecord(chain, seq, prev, record_hash(chain, seq, prev, event.content()), event)


@dataclass(frozen=True)
class Problem:
    """The first bad record of a chain: its seq, the kind of damage and a sentence."""

    seq: int
    kind: str
    detail: str

    def to_api(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one chain."""

    chain: str
    records: int
    head_seq: int
    head_hash: str
    first_bad: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def to_api(self) -> dict[str, Any]:
        return {"chain": self.chain, "ok": self.ok, "records": self.records,
                "head": {"seq": self.head_seq, "hash": self.head_hash},
                "first_bad": None if self.first_bad is None else self.first_bad.to_api()}


def verify(records: Sequence[AuditRecord], *, chain: str | None = None, after: tuple[int, str] | None = None,
           anchors: Mapping[int, str] | None = None) -> Verification:
    """Check a chain's records, given in stored order; name the first bad one (`Problem`).

    ``after`` = (seq, hash) says the records continue a chain whose record ``seq`` had that hash
    (verifying a segment); ``anchors`` maps seqs to hashes known from elsewhere (the archive):
    a record that differs is ``modified``, and an anchor past the last record means records
    were cut off the end (``missing``).
    """
    chain = chain if chain is not None else (records[0].chain if records else "")
    start_seq, start_hash = after if after is not None else (0, GENESIS)
    where: dict[str, int] = {}
    present: dict[int, int] = {}
    for r in records:
        where.setdefault(r.hash, r.seq)
        present[r.seq] = present.get(r.seq, 0) + 1
    prev: AuditRecord | None = None

    def bad(seq: int, kind: str, detail: str) -> Verification:
        head = prev if prev is not None else None
        return Verification(chain, len(records), head.seq if head else start_seq,
                            head.hash if head else start_hash, Problem(seq, kind, detail))

    for r in records:
        expected = start_seq + 1 if prev is None else prev.seq + 1
        expected_prev = start_hash if prev is None else prev.hash
        if r.seq < expected:
            if present[r.seq] > 1:
                return bad(r.seq, "duplicate", f"seq {r.seq} appears {present[r.seq]} times")
            return bad(r.seq, "reordered", f"record {r.seq} comes after record {expected - 1}")
        if r.seq > expected:
            if expected in present:
                return bad(r.seq, "reordered", f"record {r.seq} comes before record {expected}")
            gap = f"record {expected} is" if r.seq == expected + 1 else f"records {expected}-{r.seq - 1} are"
            return bad(expected, "missing", f"{gap} missing")
        if r.computed_hash() != r.hash:
            origin = where.get(r.prev_hash)
            if r.prev_hash != expected_prev and (origin is not None or r.prev_hash == GENESIS):
                after_what = "first" if origin is None else f"after the record now at seq {origin}"
                return bad(r.seq, "reordered", f"the record was written {after_what}, not at seq {r.seq}")
            return bad(r.seq, "modified", "the record's content does not match its hash")
        if r.prev_hash != expected_prev:
            origin = where.get(r.prev_hash)
            if origin is not None and origin != expected - 1:
                return bad(r.seq, "reordered", f"the record was written after the record now at seq {origin}")
            if prev is None:
                if after is None:
                    return bad(r.seq, "broken_link", "the first record does not start from the genesis hash")
                return bad(r.seq, "broken_link", f"the record does not follow record {start_seq}")
            return bad(prev.seq, "modified", f"the record's hash was rewritten: record {r.seq} is linked to "
                                             f"{r.prev_hash[:16]}..., not to {prev.hash[:16]}...")
        if anchors and anchors.get(r.seq, r.hash) != r.hash:
            return bad(r.seq, "modified", "the record differs from its archived copy")
        prev = r
    last = prev.seq if prev is not None else start_seq
    beyond = [s for s in (anchors or {}) if s > last]
    if beyond:
        return bad(last + 1, "missing", f"the archive holds records up to seq {max(beyond)}, the chain ends at {last}")
    return Verification(chain, len(records), last, prev.hash if prev is not None else start_hash)
