"""The feature store's AWS-backed stores against moto (in-process): the online store's
conditional writes, read-time TTL expiry and batched reads, the offline store's partitions,
the versioned registry, statistics, materialization, and the online answer equal to the
point-in-time answer."""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from feature_store_moto import BUCKET, FEATURES_TABLE, mocked_feature_store

from mlops.features.definitions import Field, FeatureView
from mlops.features.online_store import UnprocessedKeysError, batch_get_with_retries
from mlops.features.pit import latest_as_of, pit_join
from mlops.features.stats import merge_stats
from mlops.features.timestamps import as_micros, to_datetime
from mlops.features.yield_example import device_parametrics, tester_health

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
US = as_micros(NOW)
HOUR = 3_600_000_000


@pytest.fixture
def aws():
    with mocked_feature_store() as aws:
        yield aws


def health(tester: str, ts: int, contact: float = 1.0, status: str = "ok") -> dict:
    return {"tester_id": tester, "event_timestamp": ts, "contact_res_ohm": contact, "calibration_age_h": 1.0,
            "alarms_24h": 0, "status": status, "in_calibration": False}


def sent(*rows: dict) -> list[dict]:
    """Rows as a client sends them: the event time as ISO-8601 (validation turns it back into
    epoch microseconds; a bare int would be read as epoch seconds)."""
    return [{**r, "event_timestamp": to_datetime(r["event_timestamp"]).isoformat()} for r in rows]


def count_calls(aws) -> dict[str, int]:
    """Count the DynamoDB API calls the online store's client makes from now on."""
    counts: dict[str, int] = {}

    def count(model, **_: object) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    aws.store.online._connection().client.meta.events.register("before-call.dynamodb", count)
    return counts


# ------------------------------------------------------------------------ online: writes


def test_a_late_row_never_overwrites_a_newer_one(aws) -> None:
    online = aws.store.online
    assert online.write(tester_health, [health("T1", US - 10, 2.0)], now=NOW).written == 1
    late = online.write(tester_health, [health("T1", US - 20, 9.0)], now=NOW)
    assert (late.written, late.stale) == (0, 1)
    assert online.read("T1", [tester_health], NOW).views["tester_health"].values["contact_res_ohm"] == 2.0
    # out of order inside one batch: the newest wins, whatever the order
    batch = online.write(tester_health, [health("T2", US - 5, 5.0), health("T2", US - 50, 50.0)], now=NOW)
    assert (batch.rows, batch.written) == (2, 1)
    assert online.read("T2", ["tester_health"], NOW).views["tester_health"].values["contact_res_ohm"] == 5.0
    # a replay at the same time lands (the point-in-time join's tie rule: the last row wins)
    assert online.write(tester_health, [health("T1", US - 10, 3.0)], now=NOW).written == 1
    assert online.read("T1", ["tester_health"], NOW).views["tester_health"].values["contact_res_ohm"] == 3.0


def test_expiry_is_decided_at_read_time_before_dynamodb_deletes_anything(aws) -> None:
    online = aws.store.online
    online.write(tester_health, [health("T1", US, 2.5)], now=NOW)
    ttl = tester_health.ttl
    at_ttl = online.read("T1", [tester_health], NOW + ttl).views["tester_health"]
    assert at_ttl.status == "ok" and at_ttl.freshness == ttl  # the TTL is inclusive, as in the PIT join
    past = online.read("T1", [tester_health], as_micros(NOW + ttl) + 1).views["tester_health"]
    assert past.status == "expired" and past.expired and not past.found
    assert set(past.values.values()) == {None}
    assert past.event_timestamp == NOW and past.freshness == ttl + timedelta(microseconds=1)
    # the item is still stored: nothing was deleted, the read decided
    [item] = aws.online_items()
    assert item["entity_key"]["S"] == "tester_id=T1" and int(item["event_ts"]["N"]) == US
    assert int(item["expires_at"]["N"]) == int((NOW + ttl).timestamp())
    assert json.loads(item["values"]["S"])["contact_res_ohm"] == 2.5


def test_rows_already_past_their_ttl_are_not_written(aws) -> None:
    old = US - int(tester_health.ttl.total_seconds() * 1e6) - 1
    result = aws.store.online.write(tester_health, [health("T1", old)], now=NOW)
    assert (result.written, result.expired) == (0, 1)
    assert aws.online_items() == []
    assert aws.store.online.read("T1", [tester_health], NOW).views["tester_health"].status == "missing"


# ------------------------------------------------------------------------- online: reads


def test_the_answer_carries_values_event_times_and_freshness(aws) -> None:
    online = aws.store.online
    row = {"device_id": "D1", "event_timestamp": US - HOUR, **{f: 1.5 for f in device_parametrics.feature_names}}
    row["p007"] = None
    online.write(device_parametrics, [row], now=NOW)
    online.write(tester_health, [health("T3", US - 2 * HOUR)], now=NOW)
    answer = online.read({"device_id": "D1", "tester_id": "T3"}, [device_parametrics, tester_health], NOW)
    params = answer.views["device_parametrics"]
    assert params.status == "ok" and list(params.values) == list(device_parametrics.feature_names)
    assert params.values["vdd"] == 1.5 and params.values["p007"] is None
    assert params.event_timestamp == NOW - timedelta(hours=1) and params.freshness == timedelta(hours=1)
    assert answer.views["tester_health"].freshness == timedelta(hours=2)
    flat = answer.values(full_names=True)
    assert flat["device_parametrics__vdd"] == 1.5 and flat["tester_health__status"] == "ok"
    with pytest.raises(ValueError, match="contact_res_ohm"):
        answer.values()  # both views have contact_res_ohm
    assert params.to_dict()["event_timestamp"] == "2024-05-01T11:00:00Z"
    assert params.to_dict()["freshness_seconds"] == 3600.0


def test_one_entity_is_one_read_and_many_entities_are_batched(aws) -> None:
    online = aws.store.online
    online.write(tester_health, [health(f"T{i}", US - i) for i in range(0, 250, 2)], now=NOW)
    online.write(device_parametrics, [{"device_id": "D1", "event_timestamp": US, "vdd": 1.0, "idd": 2.0}], now=NOW)
    calls = count_calls(aws)
    online.read("T0", [tester_health], NOW)
    assert calls == {"GetItem": 1}
    online.read({"device_id": "D1", "tester_id": "T0"}, [device_parametrics, tester_health], NOW)
    assert calls == {"GetItem": 1, "BatchGetItem": 1}
    calls.clear()
    entities = [f"T{i}" for i in range(250)] + ["T0"]  # 250 distinct keys: 3 pages of at most 100
    answers = online.read_many(entities, [tester_health], NOW)
    assert calls == {"BatchGetItem": 3}
    assert [a.entity for a in answers] == entities
    assert [a.views["tester_health"].status for a in answers[:4]] == ["ok", "missing", "ok", "missing"]
    assert answers[248].views["tester_health"].event_timestamp == to_datetime(US - 248)
    assert answers[-1] == answers[0]


def test_unprocessed_keys_are_retried_with_capped_backoff(aws) -> None:
    online = aws.store.online
    online.write(tester_health, [health(f"T{i}", US) for i in range(10)], now=NOW)
    client = online._connection().client
    keys = [{"entity_key": {"S": f"tester_id=T{i}"}, "view": {"S": "tester_health"}} for i in range(10)]
    held_back = {"attempts": 0}

    def throttled(request: dict) -> dict:
        """DynamoDB under throttling: the first two answers leave half the keys unprocessed."""
        held_back["attempts"] += 1
        response = client.batch_get_item(**request)
        if held_back["attempts"] <= 2:
            asked = request["RequestItems"][FEATURES_TABLE]["Keys"]
            keep, defer = asked[: len(asked) // 2], asked[len(asked) // 2:]
            kept = {k["entity_key"]["S"] for k in keep}
            response["Responses"][FEATURES_TABLE] = [i for i in response["Responses"][FEATURES_TABLE]
                                                     if i["entity_key"]["S"] in kept]
            response["UnprocessedKeys"] = {FEATURES_TABLE: {"Keys": defer}}
        return response

    sleeps: list[float] = []
    items = batch_get_with_retries(throttled, FEATURES_TABLE, keys, sleep=sleeps.append, rng=lambda: 1.0,
                                   base_delay=0.01, max_delay=0.015)
    assert sorted(i["entity_key"]["S"] for i in items) == sorted(k["entity_key"]["S"] for k in keys)
    assert held_back["attempts"] == 3 and sleeps == [0.01, 0.015]  # exponential, capped

    def always_throttled(request: dict) -> dict:
        return {"Responses": {FEATURES_TABLE: []}, "UnprocessedKeys": {FEATURES_TABLE: request["RequestItems"][FEATURES_TABLE]}}

    sleeps.clear()
    with pytest.raises(UnprocessedKeysError, match="10 keys still unprocessed after 4 BatchGetItem attempts"):
        batch_get_with_retries(always_throttled, FEATURES_TABLE, keys, max_attempts=4, sleep=sleeps.append)
    assert len(sleeps) == 3  # bounded: no sleep after the last attempt


# ------------------------------------------------------ online at t == point in time at t


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_online_answer_at_t_equals_the_point_in_time_answer(aws, seed: int) -> None:
    """Batches with late rows, out-of-order rows and ties, ingested through the store: at any
    read time t (all rows at or before t), the online store serves exactly what the
    point-in-time join over the offline store gives at t, expiry included."""
    rng = random.Random(seed)
    store = aws.store
    testers = [f"T{i}" for i in range(8)]
    ttl_us = int(tester_health.ttl.total_seconds() * 1e6)
    clock = US
    for batch in range(6):
        clock += HOUR
        rows = []
        for _ in range(rng.randint(1, 12)):
            ts = clock - rng.choice([0, 1, 5, HOUR, 3 * HOUR, ttl_us - HOUR, 2 * ttl_us])  # late, and ties
            rows.append(health(rng.choice(testers), ts, round(rng.uniform(0, 100), 3), rng.choice(["ok", "down"])))
        outcome = store.ingest(tester_health, sent(*rows), now=to_datetime(clock))
        assert outcome.accepted == len(rows)
    offline = store.offline.read_columns(tester_health)
    for t in (clock, clock + HOUR, clock + ttl_us - 3 * HOUR, clock + ttl_us + HOUR):
        expected = latest_as_of(offline, np.array(testers, dtype=object), t, tester_health.ttl, keys=["tester_id"])
        answers = store.online.read_many(testers, [tester_health], t)
        for i, answer in enumerate(answers):
            served = answer.views["tester_health"]
            want_time = expected["event_timestamp"][i]
            if np.isnat(want_time):
                assert not served.found, (t, testers[i])
                continue
            assert served.found and as_micros(served.event_timestamp) == int(want_time.astype("datetime64[us]").astype(np.int64))
            for name in tester_health.feature_names:
                assert served.values[name] == expected[name][i], (t, testers[i], name)


# ------------------------------------------------------------------------------ offline store


def test_offline_store_is_append_only_and_hive_partitioned(aws) -> None:
    store = aws.store
    day1 = US - 24 * HOUR
    first = store.ingest(tester_health, sent(health("T1", day1, 1.0), health("T2", US - HOUR, 2.0)), now=NOW)
    second = store.ingest(tester_health, sent(health("T1", US - HOUR, 3.0)), now=NOW + timedelta(seconds=1))
    assert first.to_dict()["offline"]["partitions"] == ["date=2024-04-30", "date=2024-05-01"]
    keys = aws.object_keys("features/")
    assert len(keys) == 3 and all(k.startswith("features/view=tester_health/date=2024-0") and k.endswith(".jsonl")
                                  for k in keys)
    assert sorted(second.offline_parts + first.offline_parts) == keys
    head = aws.s3.head_object(Bucket=BUCKET, Key=first.offline_parts[0])
    assert head["Metadata"]["rows"] == "1" and len(head["Metadata"]["view-version"]) == 64
    # pandas reads a part as it is
    body = aws.s3.get_object(Bucket=BUCKET, Key=first.offline_parts[1])["Body"].read().decode()
    frame = pd.read_json(pd.io.common.StringIO(body), lines=True)
    assert list(frame.columns) == ["tester_id", "event_timestamp", *tester_health.feature_names]
    assert pd.to_datetime(frame.event_timestamp, unit="us", utc=True)[0] == pd.Timestamp(NOW - timedelta(hours=1))
    # range reads are half-open and keep ingestion order within a day
    rows = store.offline.read_rows(tester_health, US - 2 * HOUR, US)
    assert [(r["tester_id"], r["contact_res_ohm"]) for r in rows] == [("T2", 2.0), ("T1", 3.0)]
    assert store.offline.read_rows(tester_health, day1, day1 + 1)[0]["contact_res_ohm"] == 1.0
    assert store.offline.read_rows(tester_health, day1 + 1, US - HOUR) == []


def test_training_set_from_the_offline_store_is_point_in_time_correct(aws) -> None:
    store = aws.store
    store.ingest(tester_health, sent(health("T1", US - 3 * HOUR, 1.0), health("T1", US - HOUR, 2.0),
                                 health("T2", US - 30 * HOUR, 7.0)), now=NOW)
    labels = {"tester_id": np.array(["T1", "T1", "T2", "T3"], dtype=object),
              "event_timestamp": np.array([US - 2 * HOUR, US, US, US], dtype=np.int64),
              "label": np.array([0, 1, 1, 0])}
    got = store.training_set(labels, [tester_health])
    assert got["contact_res_ohm"][:2].tolist() == [1.0, 2.0]
    assert np.isnan(got["contact_res_ohm"][2])  # 30 h old: past the 1-day TTL
    assert np.isnan(got["contact_res_ohm"][3])
    expected = pit_join(labels, store.offline.read_columns(tester_health), keys=["tester_id"], ttl=tester_health.ttl,
                        feature_names=list(tester_health.feature_names))
    for name in tester_health.feature_names:
        assert [None if isinstance(v, float) and np.isnan(v) else v for v in got[name]] == \
            [None if isinstance(v, float) and np.isnan(v) else v for v in expected[name]]


# ------------------------------------------------------------------------------ rejections


def test_a_rejected_batch_changes_nothing_stored(aws) -> None:
    store = aws.store
    good, bad = health("T1", US), {**health("T2", US), "contact_res_ohm": "high"}
    outcome = store.ingest(tester_health, sent(good, bad), now=NOW, all_or_nothing=True)
    assert outcome.batch_rejected and not outcome.stored and outcome.rejected[0]["row"] == 1
    outcome = store.ingest(tester_health, sent(bad), now=NOW)
    assert not outcome.stored
    assert aws.online_items() == [] and aws.object_keys() == []
    assert aws.dynamodb.scan(TableName="test-RegistryTable")["Items"] == []  # not even the registry
    partial = store.ingest(tester_health, sent(good, bad), now=NOW)
    assert (partial.accepted, [r["row"] for r in partial.rejected]) == (1, [1])
    assert [i["entity_key"]["S"] for i in aws.online_items()] == ["tester_id=T1"]


# --------------------------------------------------------------------------------- registry


def _changed_health(**changes: object) -> FeatureView:
    data = tester_health.to_dict()
    data.update(changes)
    return FeatureView.from_dict(data)


def test_a_schema_change_is_a_new_version_never_an_overwrite(aws) -> None:
    registry = aws.store.registry
    first = {(r.kind, r.name): r for r in aws.store.apply(now=NOW)}
    assert first[("feature_view", "tester_health")].status == "created"
    assert {r.status for r in aws.store.apply(now=NOW)} == {"unchanged"}
    wider = _changed_health(schema=[*tester_health.to_dict()["schema"], Field("humidity_pct", "float").to_dict()])
    [updated] = registry.apply([wider], now=NOW + timedelta(hours=1))
    assert (updated.status, updated.version) == ("updated", 2)
    assert updated.changes["added"] == ["humidity_pct"] and not updated.changes["breaking"]
    latest = registry.get("feature_view", "tester_health")
    assert latest.version == 2 and [v.version for v in latest.versions] == [1, 2]
    assert FeatureView.from_dict(latest.definition) == wider
    assert FeatureView.from_dict(registry.definition("feature_view", "tester_health", 1)) == tester_health
    # an older deployment applying the old definition does not flip the registry back
    [old] = registry.apply([tester_health], now=NOW + timedelta(hours=2))
    assert (old.status, old.version) == ("outdated", 1)  # it is version 1's content
    assert registry.get("feature_view", "tester_health").version == 2
    # a deliberate revert is a new version with the old content
    [revert] = registry.apply([tester_health], now=NOW + timedelta(hours=3), allow_revert=True)
    assert (revert.status, revert.version) == ("updated", 3)
    history = registry.get("feature_view", "tester_health").versions
    assert history[0].content_hash == history[2].content_hash != history[1].content_hash
    summary = {d.name: d.summary() for d in registry.listing().of_kind("feature_view")}
    assert summary["tester_health"]["version"] == 3 and len(summary["tester_health"]["versions"]) == 3


def test_concurrent_appliers_agree_on_one_new_version(aws) -> None:
    registry = aws.store.registry
    registry.apply([tester_health], now=NOW)
    longer = _changed_health(ttl_seconds=7200)
    results = []

    def apply() -> None:
        results.extend(registry.apply([longer], now=NOW))

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["unchanged", "unchanged", "unchanged", "updated"]
    assert {r.version for r in results} == {2}
    assert [v.version for v in registry.get("feature_view", "tester_health").versions] == [1, 2]


# ------------------------------------------------------------------------ statistics, state


def test_daily_statistics_are_stored_and_merge_into_baselines(aws) -> None:
    store = aws.store
    store.ingest(tester_health, sent(health("T1", US - HOUR, 1.0), health("T2", US - 2 * HOUR, 3.0)), now=NOW)
    store.ingest(tester_health, sent(health("T3", US - 3 * HOUR, 5.0), {**health("T4", US - 25 * HOUR), "contact_res_ohm": None}),
                 now=NOW)
    day = store.stats.daily("tester_health", "2024-05-01")
    assert day.rows == 3 and day.features["contact_res_ohm"].count == 3
    assert (day.features["contact_res_ohm"].min, day.features["contact_res_ohm"].max) == (1.0, 5.0)
    assert day.features["contact_res_ohm"].mean == pytest.approx(3.0)
    assert day.features["contact_res_ohm"].sketch is not None
    assert store.stats.days("tester_health") == ["2024-04-30", "2024-05-01"]
    baseline = store.stats.baseline("tester_health", "2024-04-30", "2024-05-01")
    assert baseline.rows == 4 and baseline.features["contact_res_ohm"].nulls == 1
    by_days = merge_stats([store.stats.daily("tester_health", "2024-04-30"), day])
    for name, stats in baseline.features.items():  # the same rows, merged in another grouping
        other = by_days.features[name]
        assert (stats.count, stats.nulls, stats.min, stats.max) == (other.count, other.nulls, other.min, other.max)
        assert stats.mean == pytest.approx(other.mean)
    assert store.stats.daily("tester_health", "2024-05-02") is None
    state = store.registry.state("tester_health")
    assert (state.last_event_us, state.rows_ingested, state.last_ingested_us) == (US - HOUR, 4, US)
    # an older batch does not move the newest event time back
    store.ingest(tester_health, sent(health("T5", US - 5 * HOUR)), now=NOW)
    assert store.registry.state("tester_health").last_event_us == US - HOUR


def test_freshness_alert_from_the_stored_state(aws) -> None:
    store = aws.store
    store.ingest(tester_health, sent(health("T1", US - 2 * HOUR)), now=NOW)
    report = {s.view: s for s in store.freshness(now=NOW, thresholds={"tester_health": timedelta(hours=1)})}
    assert report["tester_health"].stale and report["tester_health"].freshness == timedelta(hours=2)
    assert report["device_parametrics"].stale and report["device_parametrics"].last_event_us is None
    relaxed = {s.view: s for s in store.freshness(now=NOW)}  # default threshold: the TTL (1 day)
    assert not relaxed["tester_health"].stale
    listing = store.listing(now=NOW, thresholds={"tester_health": timedelta(hours=1)})
    health_view = next(v for v in listing["feature_views"] if v["name"] == "tester_health")
    assert health_view["freshness"] == {"last_event": "2024-05-01T10:00:00Z", "freshness_seconds": 7200.0,
                                        "threshold_seconds": 3600.0, "stale": True}


# ------------------------------------------------------------------------ materialization


def test_materialize_copies_the_offline_window_to_the_online_store(aws) -> None:
    store = aws.store
    # rows that reached only the offline store (a backfill, or an online table being rebuilt)
    store.offline.write(tester_health, [health("T1", US - 3 * HOUR, 1.0), health("T1", US - 2 * HOUR, 2.0),
                                        health("T2", US - 30 * HOUR, 9.0), health("T3", US + HOUR, 4.0)],
                        ingested_at=NOW)
    assert aws.online_items() == []
    [result] = store.materialize(US - 36 * HOUR, US, ["tester_health"], now=NOW)
    assert (result.rows, result.online.written, result.online.expired) == (3, 1, 1)  # T2 is past its TTL
    answers = store.online.read_many(["T1", "T2", "T3"], [tester_health], NOW)
    assert [a.views["tester_health"].status for a in answers] == ["ok", "missing", "missing"]
    assert answers[0].views["tester_health"].values["contact_res_ohm"] == 2.0
    # materializing again never goes back to older values
    store.online.write(tester_health, [health("T1", US - HOUR, 7.0)], now=NOW)
    [again] = store.materialize(US - 36 * HOUR, US, ["tester_health"], now=NOW)
    assert again.online.stale == 1
    assert store.online.read("T1", [tester_health], NOW).views["tester_health"].values["contact_res_ohm"] == 7.0
    with pytest.raises(ValueError, match="start < end"):
        store.materialize(US, US)


def test_materialize_incremental_moves_a_watermark_per_view(aws) -> None:
    store = aws.store
    store.offline.write(tester_health, [health("T1", US - 2 * HOUR, 1.0)], ingested_at=NOW)
    first = {r.view: r for r in store.materialize_incremental(US)}
    assert first["tester_health"].start_us == US - int(tester_health.ttl.total_seconds() * 1e6)  # end - ttl
    assert first["tester_health"].online.written == 1
    assert store.registry.state("tester_health").materialized_until_us == US
    store.offline.write(tester_health, [health("T1", US + HOUR, 2.0), health("T9", US - 5 * HOUR, 3.0)],
                        ingested_at=NOW + timedelta(hours=2))
    second = {r.view: r for r in store.materialize_incremental(US + 2 * HOUR, now=US + 2 * HOUR)}
    assert (second["tester_health"].start_us, second["tester_health"].rows) == (US, 1)  # only [US, US + 2h)
    assert store.online.read("T9", [tester_health], US + 2 * HOUR).views["tester_health"].status == "missing"
    assert store.online.read("T1", [tester_health], US + 2 * HOUR).views["tester_health"].values["contact_res_ohm"] == 2.0
    third = {r.view: r for r in store.materialize_incremental(US + 2 * HOUR)}
    assert third["tester_health"].status == "up_to_date" and third["tester_health"].rows == 0
    assert store.registry.state("device_parametrics").materialized_until_us == US + 2 * HOUR
