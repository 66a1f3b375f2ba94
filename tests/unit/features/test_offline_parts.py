"""Content-addressed offline parts and statistics: the key derivation (pure), and against moto
that the same rows written again - a retry after a half-failed ingestion, or a duplicate
request - leave the offline store, the statistics and the online store exactly as one write
would, while the latest-ingested-wins tie rule of the point-in-time join still holds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from botocore.exceptions import ClientError
from feature_store_moto import BUCKET, FEATURES_TABLE, mocked_feature_store

from mlops.features.offline_store import day_of, part_body, part_digest, part_key
from mlops.features.timestamps import as_micros, to_datetime
from mlops.features.yield_example import tester_health

NOW = datetime(2024, 5, 3, 12, tzinfo=timezone.utc)
US = as_micros(NOW)
HOUR = 3_600_000_000
DAY = 24 * HOUR


def health(tester: str, ts: int, contact: float = 1.0, status: str = "ok") -> dict:
    return {"tester_id": tester, "event_timestamp": ts, "contact_res_ohm": contact, "calibration_age_h": 1.0,
            "alarms_24h": 0, "status": status, "in_calibration": False}


def sent(*rows: dict) -> list[dict]:
    return [{**r, "event_timestamp": to_datetime(r["event_timestamp"]).isoformat()} for r in rows]


def key_of(rows: list[dict], view=tester_health) -> str:
    day = day_of(rows[0]["event_timestamp"])
    return part_key(view.name, day, part_digest(view.name, day, part_body(view, rows)))


# ------------------------------------------------------------------------------ key derivation


def test_the_same_content_gives_the_same_key_in_the_hive_layout() -> None:
    rows = [health("T1", US - HOUR, 1.0), health("T2", US - 2 * HOUR, 2.0)]
    again = [dict(reversed(list(r.items()))) for r in rows]  # same rows, keys in another order
    assert key_of(rows) == key_of(again) == key_of([dict(r) for r in rows])
    assert re.fullmatch(r"features/view=tester_health/date=2024-05-03/part-[0-9a-f]{64}\.jsonl", key_of(rows))
    body = part_body(tester_health, rows)
    assert [json.loads(line)["tester_id"] for line in body.decode().splitlines()] == ["T1", "T2"]
    assert key_of(rows).endswith(f"part-{part_digest('tester_health', '2024-05-03', body)}.jsonl")


@pytest.mark.parametrize("change", [
    lambda rows: rows[0].update(contact_res_ohm=1.0000001),  # a value
    lambda rows: rows[0].update(contact_res_ohm=None),  # a value gone missing
    lambda rows: rows[0].update(status="down"),  # a string feature
    lambda rows: rows[1].update(event_timestamp=rows[1]["event_timestamp"] + 1),  # a time, by 1 us
    lambda rows: rows[1].update(tester_id="T3"),  # an entity
    lambda rows: rows.reverse(),  # the order (it decides ties)
    lambda rows: rows.pop(),  # a row less
    lambda rows: rows.append(dict(rows[0])),  # a row more (even a repeated one)
])
def test_any_change_of_the_rows_gives_another_key(change) -> None:
    rows = [health("T1", US - HOUR, 1.0), health("T2", US - 2 * HOUR, 2.0)]
    changed = [dict(r) for r in rows]
    change(changed)
    assert key_of(changed) != key_of(rows)


def test_the_view_and_the_day_are_part_of_the_content() -> None:
    body = part_body(tester_health, [health("T1", US - HOUR)])
    digests = {part_digest("tester_health", "2024-05-03", body), part_digest("other_view", "2024-05-03", body),
               part_digest("tester_health", "2024-05-04", body)}
    assert len(digests) == 3


# --------------------------------------------------------------------------- against moto


class PutFaults:
    """Fail the S3 PutObject calls whose key contains a marker, as a throttled S3 would
    (after the SDK's retries): a botocore hook on the store's real client."""

    def __init__(self, s3) -> None:
        self.marker: str | None = None
        self.refused: list[str] = []
        s3.meta.events.register("provide-client-params.s3.PutObject", self._check)

    def _check(self, params: dict, **_: object) -> None:
        if self.marker and self.marker in params["Key"]:
            self.refused.append(params["Key"])
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")


@pytest.fixture
def aws() -> Iterator:
    with mocked_feature_store() as aws:
        yield aws


def stored_state(aws) -> tuple:
    """Everything ingestion writes, but times of writing: object keys and bodies, online values."""
    objects = {k: aws.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in aws.object_keys()}
    online = sorted((i["entity_key"]["S"], i["event_ts"]["N"], i["values"]["S"]) for i in aws.online_items())
    return objects, online


def wipe(aws) -> None:
    for key in aws.object_keys():
        aws.s3.delete_object(Bucket=BUCKET, Key=key)
    for item in aws.online_items():
        aws.dynamodb.delete_item(TableName=FEATURES_TABLE, Key={k: item[k] for k in ("entity_key", "view")})


THREE_DAYS = [health("T1", US - 2 * DAY - HOUR, 1.0), health("T2", US - 2 * DAY - HOUR, 2.0),
              health("T1", US - DAY - HOUR, 3.0), health("T1", US - HOUR, 4.0), health("T3", US - 2 * HOUR, 5.0)]


@pytest.mark.parametrize("failing", ["features/view=tester_health/date=2024-05-02",
                                     "features/view=tester_health/date=2024-05-03",
                                     "stats/view=tester_health/date=2024-05-02"])
def test_a_retry_after_a_half_failed_ingestion_stores_each_row_once(aws, failing: str) -> None:
    store = aws.store
    store.ingest(tester_health, sent(*THREE_DAYS), now=NOW)  # what one successful request leaves...
    once = stored_state(aws)
    wipe(aws)  # ...then from an empty store: a failure half-way and a retry
    faults = PutFaults(aws.s3)
    faults.marker = failing
    with pytest.raises(ClientError):
        store.ingest(tester_health, sent(*THREE_DAYS), now=NOW)
    assert faults.refused and aws.object_keys("features/view=tester_health/date=2024-05-01/")  # day 1 is stored
    faults.marker = None
    retry = store.ingest(tester_health, sent(*THREE_DAYS), now=NOW + timedelta(seconds=30))
    assert retry.accepted == 5 and retry.online.written == 2  # T1, T3 (an equal time lands again); T2 expired
    rows = store.offline.read_rows(tester_health)
    assert sorted((r["tester_id"], r["contact_res_ohm"]) for r in rows) == \
        [("T1", 1.0), ("T1", 3.0), ("T1", 4.0), ("T2", 2.0), ("T3", 5.0)]
    assert len(aws.object_keys("features/")) == 3 and len(aws.object_keys("stats/")) == 3
    assert [store.stats.daily("tester_health", d).rows for d in ("2024-05-01", "2024-05-02", "2024-05-03")] == [2, 1, 2]
    assert store.stats.baseline("tester_health", "2024-05-01", "2024-05-03").features["contact_res_ohm"].mean == 3.0
    assert stored_state(aws) == once  # exactly what one successful request leaves (but the times of writing)
    # a training set and a materialization see no duplicate
    labels = {"tester_id": np.array(["T1", "T3"], dtype=object),
              "event_timestamp": np.array([US, US], dtype=np.int64)}
    assert store.training_set(labels, [tester_health])["contact_res_ohm"].tolist() == [4.0, 5.0]
    [done] = store.materialize(US - 3 * DAY, US, ["tester_health"], now=NOW)
    assert done.rows == 5


def test_the_same_request_twice_stores_its_rows_once(aws) -> None:
    store = aws.store
    first = store.ingest(tester_health, sent(*THREE_DAYS), now=NOW)
    before = stored_state(aws)
    second = store.ingest(tester_health, sent(*THREE_DAYS), now=NOW + timedelta(minutes=1))
    assert second.to_dict() == first.to_dict() and second.offline_parts == first.offline_parts
    assert stored_state(aws) == before
    assert len(store.offline.read_rows(tester_health)) == 5
    head = aws.s3.head_object(Bucket=BUCKET, Key=first.offline_parts[0])
    assert head["Metadata"]["ingested-at"] == str(US + 60_000_000)  # rewritten: stamped again
    # a request of other rows adds its own part next to it
    store.ingest(tester_health, sent(health("T9", US - HOUR, 9.0)), now=NOW)
    assert len(aws.object_keys("features/view=tester_health/date=2024-05-03/")) == 2


def test_ties_go_to_the_part_ingested_last_also_when_it_is_rewritten(aws) -> None:
    store = aws.store
    t = US - HOUR
    labels = {"tester_id": np.array(["T1"], dtype=object), "event_timestamp": np.array([US], dtype=np.int64)}

    def served() -> tuple[float, float]:
        offline = store.training_set(labels, [tester_health])["contact_res_ohm"][0]
        online = store.online.read("T1", [tester_health], NOW).views["tester_health"].values["contact_res_ohm"]
        return offline, online

    a, b = sent(health("T1", t, 1.0), health("T0", t)), sent(health("T1", t, 2.0))
    store.ingest(tester_health, a, now=NOW)
    store.ingest(tester_health, b, now=NOW + timedelta(seconds=1))
    assert served() == (2.0, 2.0)
    store.ingest(tester_health, a, now=NOW + timedelta(seconds=2))  # a replay of A lands last, in both stores
    assert served() == (1.0, 1.0)
    # the parts' names (hashes) sort either way: the order comes from the ingestion stamp
    t1 = [r["contact_res_ohm"] for r in store.offline.read_rows(tester_health) if r["tester_id"] == "T1"]
    assert t1 == [2.0, 1.0]


def test_parts_named_before_content_addressing_keep_their_place(aws) -> None:
    store = aws.store
    t = US - HOUR
    store.ingest(tester_health, sent(health("T1", t, 1.0)), now=NOW)
    store.ingest(tester_health, sent(health("T1", t, 3.0)), now=NOW + timedelta(seconds=2))
    body = part_body(tester_health, [health("T1", t, 2.0)])
    legacy = f"features/view=tester_health/date=2024-05-03/part-{US + 1_000_000:016d}-0123456789ab.jsonl"
    aws.s3.put_object(Bucket=BUCKET, Key=legacy, Body=body, Metadata={"rows": "1"})  # the old layout, no stamp
    assert [r["contact_res_ohm"] for r in store.offline.read_rows(tester_health)] == [1.0, 2.0, 3.0]


def test_statistics_need_the_part_of_every_day(aws) -> None:
    from mlops.features.stats import daily_stats
    from mlops.features.validation import validate_rows

    result = validate_rows(tester_health, sent(*THREE_DAYS), now=NOW)
    by_day = daily_stats(tester_health, result.columns())
    with pytest.raises(ValueError, match="2024-05-03"):
        aws.store.stats.put("tester_health", by_day, part_digests={"2024-05-01": "a", "2024-05-02": "b"},
                            ingested_at=NOW)
    assert aws.object_keys("stats/") == []


def test_the_same_data_spelled_differently_is_the_same_part() -> None:
    from mlops.features.validation import validate_rows

    def accepted(value: object, when: str) -> list[dict]:
        row = {"tester_id": "T1", "event_timestamp": when, "contact_res_ohm": value}
        return validate_rows(tester_health, [row], now=NOW).accepted

    assert key_of(accepted(1, "2024-05-03T10:00:00Z")) == key_of(accepted(1.0, "2024-05-03T12:00:00+02:00"))
    assert key_of(accepted(1, "2024-05-03T10:00:00Z")) != key_of(accepted(1.5, "2024-05-03T10:00:00Z"))


def test_a_file_load_retried_after_a_throttled_day_stores_each_row_once(aws) -> None:
    from mlops.features.loader import load_file

    csv = "tester_id,event_timestamp,contact_res_ohm\n" + "".join(
        f"F{i},{to_datetime(US - i * DAY // 2 - HOUR).isoformat()},{i}.5\n" for i in range(5))
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/tester_health/f.csv", Body=csv.encode())
    faults = PutFaults(aws.s3)
    faults.marker = "features/view=tester_health/date=2024-05-02"
    with pytest.raises(ClientError):
        load_file(aws.store, aws.s3, BUCKET, "incoming/tester_health/f.csv", now=NOW)
    faults.marker = None
    summary = load_file(aws.store, aws.s3, BUCKET, "incoming/tester_health/f.csv", now=NOW)
    assert summary["accepted"] == 5
    rows = aws.store.offline.read_rows(tester_health)
    assert sorted(r["tester_id"] for r in rows) == ["F0", "F1", "F2", "F3", "F4"]
    assert sum(aws.store.stats.daily("tester_health", d).rows for d in aws.store.stats.days("tester_health")) == 5
