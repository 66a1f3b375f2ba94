"""The audit chain's pure logic: canonical hashes, linking, and `verify` naming the first bad
record for each way a stored chain can be tampered with (modified, deleted, reordered, hash
rewritten), plus events' checks and the prediction sample."""

from __future__ import annotations

import doctest
import hashlib
import importlib
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from mlops.audit.chain import (
    GENESIS,
    AuditRecord,
    canonical_json,
    chain_for,
    chain_problem,
    link,
    record_hash,
    verify,
)
from mlops.audit.events import AuditEvent, AuditEventError, alias_entity
from mlops.audit.predictions import rate_from_env, sample_point, sampled
from mlops.audit.store import BadPageToken, decode_token, encode_token, record_from_item, record_item

CHAIN = "model:yield"


def event(i: int, **overrides) -> AuditEvent:
    fields = dict(model="yield", entity=alias_entity("yield", "champion"),
                  details={"version": i, "reason": f"move {i}", "weights": [0.1 * i, None]},
                  at=f"2026-01-05T09:{i // 60 % 60:02d}:{i % 60:02d}Z")
    fields.update(overrides)
    return AuditEvent.create("alias.moved", f"api-key:k{i % 3}", **fields)


def build(n: int, chain: str = CHAIN) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for i in range(1, n + 1):
        records.append(link(chain, records[-1] if records else None, event(i)))
    return records


def rehashed(record: AuditRecord) -> AuditRecord:
    """What an attacker who knows the algorithm writes: the record with a matching hash."""
    return replace(record, hash=record.computed_hash())


# ----------------------------------------------------------------------------- hashing
def test_canonical_json_ignores_key_order_and_keeps_unicode() -> None:
    a = {"b": {"y": 1, "x": [1.5, None]}, "a": "é"}
    b = {"a": "é", "b": {"x": [1.5, None], "y": 1}}
    assert canonical_json(a) == canonical_json(b) == '{"a":"é","b":{"x":[1.5,null],"y":1}}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("inf")})


def test_record_hash_is_sha256_of_the_canonical_record_and_covers_place_and_chain() -> None:
    content = event(1).content()
    text = canonical_json({"chain": CHAIN, "seq": 1, "prev_hash": GENESIS, "content": content})
    assert record_hash(CHAIN, 1, GENESIS, content) == hashlib.sha256(text.encode()).hexdigest()
    base = record_hash(CHAIN, 1, GENESIS, content)
    assert len({base, record_hash(CHAIN, 2, GENESIS, content), record_hash("model:other", 1, GENESIS, content),
                record_hash(CHAIN, 1, "1" * 64, content)}) == 4


def test_link_numbers_from_one_and_points_at_the_previous_hash() -> None:
    records = build(5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:]))
    assert all(r.hash == r.computed_hash() for r in records)


def test_a_clean_chain_verifies() -> None:
    records = build(20)
    result = verify(records)
    assert result.ok and result.first_bad is None
    assert (result.chain, result.records, result.head_seq, result.head_hash) == (CHAIN, 20, 20, records[-1].hash)
    assert verify([], chain=CHAIN).to_api() == {"chain": CHAIN, "ok": True, "records": 0,
                                                "head": {"seq": 0, "hash": GENESIS}, "first_bad": None}


# ----------------------------------------------------------------------------- tampering
def first_bad(records: list[AuditRecord], **kwargs) -> tuple[int, str]:
    result = verify(records, chain=CHAIN, **kwargs)
    assert not result.ok
    return result.first_bad.seq, result.first_bad.kind


def test_modified_content_is_named() -> None:
    records = build(10)
    records[5] = records[5].with_event(replace(records[5].event, actor="mallory"))
    assert first_bad(records) == (6, "modified")


def test_modified_details_are_named() -> None:
    records = build(10)
    details = {**records[2].event.details, "version": 99}
    records[2] = records[2].with_event(replace(records[2].event, details=details))
    assert first_bad(records) == (3, "modified")


def test_a_modified_hash_is_named() -> None:
    records = build(10)
    records[4] = replace(records[4], hash="f" * 64)
    assert first_bad(records) == (5, "modified")


def test_a_modified_link_is_named() -> None:
    records = build(10)
    records[4] = replace(records[4], prev_hash="e" * 64)
    assert first_bad(records) == (5, "modified")


def test_modified_content_with_a_recomputed_hash_is_named_through_the_next_record() -> None:
    records = build(10)
    records[3] = rehashed(records[3].with_event(replace(records[3].event, actor="mallory")))
    seq, kind = first_bad(records)
    assert (seq, kind) == (4, "modified")
    assert "hash was rewritten" in verify(records).first_bad.detail


@pytest.mark.parametrize("index", [0, 4, 8])
def test_a_deleted_record_is_named(index: int) -> None:
    records = build(10)
    del records[index]
    assert first_bad(records) == (index + 1, "missing")


def test_several_deleted_records_name_the_first() -> None:
    records = build(10)
    del records[3:6]
    result = verify(records)
    assert (result.first_bad.seq, result.first_bad.kind) == (4, "missing")
    assert result.first_bad.detail == "records 4-6 are missing"


@pytest.mark.parametrize("index", [0, 3, 8])
def test_two_swapped_records_are_named(index: int) -> None:
    """Swapped in the table: each item moved to the other's key (seq), attributes intact."""
    records = build(10)
    a, b = records[index], records[index + 1]
    records[index], records[index + 1] = replace(b, seq=a.seq), replace(a, seq=b.seq)
    assert first_bad(records) == (index + 1, "reordered")


def test_a_record_moved_further_is_named() -> None:
    records = build(10)
    moved = [replace(r, seq=s) for r, s in zip(records[:2] + records[3:8] + [records[2]] + records[8:], range(1, 11))]
    assert first_bad(moved) == (3, "reordered")


def test_records_given_out_of_order_are_named() -> None:
    records = build(6)
    assert first_bad([records[0], records[2], records[1], *records[3:]]) == (3, "reordered")
    assert first_bad([*records[:3], records[2], *records[3:]]) == (3, "duplicate")


def test_a_forged_first_record_is_named() -> None:
    records = build(3)
    records[0] = rehashed(replace(records[0], prev_hash="a" * 64))
    assert first_bad(records) == (1, "broken_link")


def test_the_archive_anchors_expose_a_cut_or_rewritten_end() -> None:
    records = build(10)
    anchors = {r.seq: r.hash for r in records}
    assert verify(records, anchors=anchors).ok
    assert verify(records[:8]).ok  # the chain alone cannot tell...
    assert first_bad(records[:8], anchors=anchors) == (9, "missing")  # ...the archive can
    last = rehashed(records[-1].with_event(replace(records[-1].event, actor="mallory")))
    assert verify([*records[:-1], last]).ok
    assert first_bad([*records[:-1], last], anchors=anchors) == (10, "modified")


def test_a_segment_verifies_against_where_it_continues() -> None:
    records = build(10)
    assert verify(records[4:], after=(4, records[3].hash)).ok
    assert first_bad(records[4:], after=(4, "b" * 64)) == (5, "broken_link")
    assert first_bad(records[5:], after=(4, records[3].hash)) == (5, "missing")


TAMPERS = ["content", "hash", "link", "rehash", "delete", "swap"]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 30), data=st.data())
def test_any_single_tamper_is_found_at_its_record(n: int, data: st.DataObject) -> None:
    records = build(n)
    kind = data.draw(st.sampled_from(TAMPERS))
    last_ok = n - 1 if kind in ("rehash", "swap") else n  # a rewritten last record needs an anchor
    k = data.draw(st.integers(1, last_ok))
    i = k - 1
    r = records[i]
    if kind == "content":
        records[i] = r.with_event(replace(r.event, entity="alias:yield/other"))
    elif kind == "hash":
        records[i] = replace(r, hash=hashlib.sha256(r.hash.encode()).hexdigest())
    elif kind == "link":
        records[i] = replace(r, prev_hash=hashlib.sha256(r.prev_hash.encode()).hexdigest())
    elif kind == "rehash":
        records[i] = rehashed(r.with_event(replace(r.event, details={"forged": True})))
    elif kind == "delete":
        if k == n:
            return  # a deleted last record is what the archive anchors are for (tested above)
        del records[i]
    else:
        a, b = records[i], records[i + 1]
        records[i], records[i + 1] = replace(b, seq=a.seq), replace(a, seq=b.seq)
    seq, found = first_bad(records)
    assert seq == k
    assert found == {"content": "modified", "hash": "modified", "link": "modified", "rehash": "modified",
                     "delete": "missing", "swap": "reordered"}[kind]


# ----------------------------------------------------------------------------- chains and events
def test_chains_per_model_predictions_apart_and_system() -> None:
    assert chain_for(event(1)) == "model:yield"
    assert chain_for(AuditEvent.create("prediction", "inference", model="yield", at=0)) == "predictions:yield"
    assert chain_for(AuditEvent.create("offline.read", "train", entity="feature_view:x", at=0)) == "system"
    assert [chain_problem(c) for c in ("system", "model:yield", "predictions:y-2")] == [None, None, None]
    assert all(chain_problem(c) for c in ("model:", "model#yield", "other:yield", "model:Yield", 3, None))


def test_events_name_every_bad_field() -> None:
    with pytest.raises(AuditEventError) as info:
        AuditEvent.create("Bad Action", "", model="Not A Model", entity="x" * 300, details=[1], at="yesterday")
    assert set(info.value.problems) == {"action", "actor", "model", "entity", "details", "at"}
    with pytest.raises(AuditEventError) as info:
        AuditEvent.from_api({"actor": "a", "colour": "red"}, prefix="record.")
    assert info.value.problems == {"record.action": "required", "record.colour": "unknown field"}
    with pytest.raises(AuditEventError, match="details: larger than"):
        AuditEvent.create("x.y", "a", details={"blob": "x" * 40_000})


def test_event_times_are_normalised_and_details_copied() -> None:
    details = {"n": 1}
    e = AuditEvent.create("retraining.run", "sfn", at="2026-01-05T10:00:00+01:00", details=details)
    details["n"] = 2
    assert e.at == "2026-01-05T09:00:00.000000Z" and e.details == {"n": 1}
    assert AuditEvent.from_api(e.to_api()) == e


def test_items_round_trip_and_stay_verifiable() -> None:
    records = build(3)
    back = [record_from_item(json.loads(json.dumps(record_item(r)))) for r in records]
    assert back == records and verify(back).ok
    system = link("system", None, AuditEvent.create("admin.api_call", "k", at=0))
    assert "model" not in record_item(system) and "entity" not in record_item(system)
    assert record_from_item(record_item(system)) == system


def test_page_tokens_round_trip_and_foreign_ones_are_refused() -> None:
    key = {"chain": {"S": CHAIN}, "seq": {"N": "7"}, "at": {"S": "2026-01-05T09:00:00.000000Z"}}
    assert decode_token(encode_token(key, "q1"), "q1") == decode_token(encode_token(key, "q1")) == key
    with pytest.raises(BadPageToken, match="another query"):
        decode_token(encode_token(key, "q1"), "q2")
    for bad in ("!!!", "eyJ4IjoxfQ", encode_token({"seq": {"N": "1"}}), encode_token({"chain": {"S": 1}, "seq": {"N": "1"}})):
        with pytest.raises(BadPageToken):
            decode_token(bad)


# ----------------------------------------------------------------------------- prediction sample
def test_sampling_is_deterministic_and_at_the_configured_rate() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    assert not any(sampled(i, 0.0) for i in ids) and all(sampled(i, 1.0) for i in ids)
    picked = [i for i in ids if sampled(i, 0.1)]
    assert picked == [i for i in ids if sampled(i, 0.1)]  # the same ids every time
    assert binomtest(len(picked), len(ids), 0.1).pvalue > 1e-4
    assert set(picked) <= {i for i in ids if sampled(i, 0.3)}  # a larger rate keeps the smaller sample
    assert sample_point("abc") == int(hashlib.sha256(b"abc").hexdigest()[:16], 16) / 2 ** 64


def test_sample_rate_configuration() -> None:
    assert rate_from_env({}) == 0.0
    assert rate_from_env({"AUDIT_PREDICTION_SAMPLE_RATE": "0.01"}) == 0.01
    assert rate_from_env({"AUDIT_PREDICTION_SAMPLE_RATE": "1"}) == 1.0
    for bad in ("1.5", "-0.1", "all", "nan"):
        with pytest.raises(ValueError, match="AUDIT_PREDICTION_SAMPLE_RATE"):
            rate_from_env({"AUDIT_PREDICTION_SAMPLE_RATE": bad})


@pytest.mark.parametrize("name", ["events", "chain", "predictions", "requests", "trail"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"mlops.audit.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
