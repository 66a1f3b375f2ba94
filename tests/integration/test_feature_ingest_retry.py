"""A retry after a half-failed ``POST /features`` leaves the stores as one successful request.

template.yaml in a LocalCloud, the API over real HTTP. A batch spans three UTC days, so the
ingest function writes three offline parts (one per day); S3 is made to throttle the PutObject
of the second or third day's part (`localcloud.faults`), so the request fails with a 503 and
Retry-After after the earlier days' parts were stored. The client's retry must not store those
rows again: offline parts are content-addressed (`mlops.features.offline_store`), and so are
the per-day statistics. Then the offline store holds every row once, the statistics count
every row once, and materialization and a point-in-time training set see no duplicate. The
same request sent twice without any failure is stored once too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from stack_env import http_json, product_cloud

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from mlops.aws import MAX_ATTEMPTS
from mlops.features.offline_store import OfflineStore, historical_features
from mlops.features.stats_store import StatsStore
from mlops.features.yield_example import tester_health

ADMIN = "retry-admin-key-0123456789"
VIEW = "tester_health"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with product_cloud({"ApiKey": "retry-test-key-0123456789", "AdminApiKey": ADMIN}) as c:
        yield c


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def three_days(tag: str, offset_s: int) -> tuple[list[datetime], list[dict]]:
    """Rows of entities ``<tag>-A``/``<tag>-B`` on the day before yesterday, yesterday and
    today (UTC); ``offset_s`` keeps each test's event times apart."""
    now = datetime.now(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    late = timedelta(hours=1, seconds=offset_s)
    times = [today - timedelta(days=2) + late, today - timedelta(days=1) + late, today + (now - today) / 2]
    rows = [{"tester_id": entity, "event_timestamp": iso(t), "contact_res_ohm": value, "calibration_age_h": 5.0,
             "alarms_24h": 0, "status": "ok", "in_calibration": False}
            for (entity, t, value) in [(f"{tag}-A", times[0], 1.0), (f"{tag}-B", times[0], 2.0),
                                       (f"{tag}-A", times[1], 3.0), (f"{tag}-A", times[2], 4.0)]]
    return times, rows


def post(api: ApiServer, rows: list[dict]) -> tuple[int, dict[str, str], Any]:
    return http_json(api, "POST", "/features", {"view": VIEW, "rows": rows}, key=ADMIN)


def offline_rows(cloud: LocalCloud, tag: str) -> list[tuple[str, int, float]]:
    """Every stored row of the test's entities, read back from the parts as they are."""
    s3, bucket = cloud.client("s3"), cloud.stack.buckets["DataBucket"].name
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"features/view={VIEW}/"):
        for obj in page.get("Contents", []):
            for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode().splitlines():
                row = json.loads(line)
                if row["tester_id"].startswith(f"{tag}-"):
                    out.append((row["tester_id"], row["event_timestamp"], row["contact_res_ohm"]))
    return sorted(out)


def stats_rows(cloud: LocalCloud, days: list[str]) -> list[int]:
    stats = StatsStore(cloud.stack.buckets["DataBucket"].name, client=cloud.client("s3"))
    return [getattr(stats.daily(VIEW, day), "rows", 0) for day in days]


def expected(rows: list[dict]) -> list[tuple[str, int, float]]:
    return sorted((r["tester_id"], micros(datetime.fromisoformat(r["event_timestamp"])), r["contact_res_ohm"])
                  for r in rows)


@pytest.mark.parametrize("failing_day", [1, 2])
def test_a_retry_after_a_throttled_later_day_stores_each_row_once(cloud, api, faults, failing_day: int) -> None:
    tag = f"RETRY{failing_day}"
    times, rows = three_days(tag, offset_s=failing_day)
    days = [t.date().isoformat() for t in times]
    stats_before = stats_rows(cloud, days)
    rule = faults.throttle("s3", "PutObject", resource=f"features/view={VIEW}/date={days[failing_day]}/")
    status, headers, body = post(api, rows)
    assert status == 503 and headers["retry-after"] == "2" and body["error"] == "service_unavailable", body
    assert rule.hits == MAX_ATTEMPTS
    # what the failed request left behind: the days before the throttled one, nothing after it
    assert offline_rows(cloud, tag) == expected([r for r in rows if r["event_timestamp"] < iso(times[failing_day])])
    faults.clear()

    status, _, body = post(api, rows)
    assert status == 200, body
    assert body["accepted"] == 4 and body["offline"] == {"rows": 4, "partitions": [f"date={d}" for d in days]}
    assert offline_rows(cloud, tag) == expected(rows)  # every row exactly once
    assert [after - before for after, before in zip(stats_rows(cloud, days), stats_before)] == [2, 1, 1]
    # materialization reads each row once: the first day's window holds its two rows
    first = micros(times[0])
    answer = cloud.invoke("FeatureMaterializeFunction", {"start": iso(times[0]), "end": iso(times[0] + timedelta(
        microseconds=1)), "views": [VIEW]})
    assert [m["rows"] for m in answer["materialized"]] == [2]
    # a point-in-time training set over the three days matches the rows, one each
    offline = OfflineStore(cloud.stack.buckets["DataBucket"].name, client=cloud.client("s3"))
    labels = {"tester_id": np.array([f"{tag}-A", f"{tag}-B", f"{tag}-A", f"{tag}-A"], dtype=object),
              "event_timestamp": np.array([first, first, micros(times[1]), micros(times[2])], dtype=np.int64)}
    got = historical_features(offline, labels, [tester_health])
    assert got["contact_res_ohm"].tolist() == [1.0, 2.0, 3.0, 4.0]
    window = offline.read_rows(tester_health, first, micros(times[2]) + 1)
    assert len([r for r in window if r["tester_id"].startswith(f"{tag}-")]) == 4


def test_the_same_request_twice_is_stored_once(cloud, api) -> None:
    times, rows = three_days("TWICE", offset_s=3)
    days = [t.date().isoformat() for t in times]
    stats_before = stats_rows(cloud, days)
    first = post(api, rows)
    second = post(api, rows)
    assert first[0] == second[0] == 200 and first[2] == second[2]
    assert offline_rows(cloud, "TWICE") == expected(rows)
    assert [after - before for after, before in zip(stats_rows(cloud, days), stats_before)] == [2, 1, 1]
    online = http_json(api, "GET", "/features/TWICE-A?views=tester_health", key=ADMIN)
    assert online[0] == 200 and online[2]["views"][VIEW]["values"]["contact_res_ohm"] == 4.0
