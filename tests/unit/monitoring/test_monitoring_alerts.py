"""Alerts reach EventBridge and SNS: in moto, an SQS queue subscribed to the topic and another
targeted by an EventBridge rule receive every alert, in batches past ten."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.monitoring.alerts import DETAIL_TYPES, SOURCE, Alert, AlertPublisher

REGION = "us-east-1"


def drain(sqs: Any, url: str, expected: int) -> list[dict]:
    out: list[dict] = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        for m in got.get("Messages", []):
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if len(out) >= expected:
            break
    return out


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queues = {}
        for name in ("from-sns", "from-events"):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queues[name] = (url, arn)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["from-sns"][1])
        events.put_rule(Name="monitoring", EventPattern=json.dumps({"source": [SOURCE]}))
        events.put_targets(Rule="monitoring", Targets=[{"Id": "q", "Arn": queues["from-events"][1]}])
        yield {"sns": sns, "sqs": sqs, "events": events, "topic": topic, "queues": queues}


def alerts(n: int) -> list[Alert]:
    kinds = list(DETAIL_TYPES)
    return [Alert(kinds[i % len(kinds)], "page" if i % 2 else "ticket", "yield", i, f"alert {i}",
                  {"i": i, "burn": 1.5 * i}, "2027-01-15T10:00:00.000000Z") for i in range(n)]


def test_every_alert_reaches_both_destinations(aws: dict[str, Any]) -> None:
    sent = alerts(12)
    delivery = AlertPublisher(aws["topic"], events=aws["events"], sns=aws["sns"]).publish(sent)
    assert (delivery.events, delivery.messages) == (12, 12)

    via_sns = drain(aws["sqs"], aws["queues"]["from-sns"][0], 12)
    assert sorted(json.loads(m["Message"])["detail"]["i"] for m in via_sns) == list(range(12))
    first = next(m for m in via_sns if json.loads(m["Message"])["detail"]["i"] == 3)
    assert first["Subject"] == "alert 3" and first["TopicArn"] == aws["topic"]
    assert json.loads(first["Message"]) == sent[3].to_dict()
    assert first["MessageAttributes"]["kind"] == {"Type": "String", "Value": sent[3].kind}
    assert first["MessageAttributes"]["severity"] == {"Type": "String", "Value": "page"}

    via_events = drain(aws["sqs"], aws["queues"]["from-events"][0], 12)
    assert len(via_events) == 12
    by_i = {e["detail"]["detail"]["i"]: e for e in via_events}
    for a in sent:
        e = by_i[a.version]
        assert e["source"] == SOURCE and e["detail-type"] == DETAIL_TYPES[a.kind] and e["detail"] == a.to_dict()


def test_a_destination_without_config_is_skipped(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERTS_TOPIC_ARN", raising=False)
    delivery = AlertPublisher(events=aws["events"], sns=aws["sns"]).publish(alerts(3))
    assert (delivery.events, delivery.messages) == (3, 0)
    assert drain(aws["sqs"], aws["queues"]["from-sns"][0], 1) == []
    monkeypatch.setenv("ALERTS_TOPIC_ARN", aws["topic"])
    delivery = AlertPublisher(event_bus=None, events=aws["events"], sns=aws["sns"]).publish(alerts(2))
    assert (delivery.events, delivery.messages) == (0, 2)


def test_bad_alerts_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown alert kind"):
        Alert("weather", "page", "yield", 1, "t")
    with pytest.raises(ValueError, match="unknown severity"):
        Alert("anomaly", "panic", "yield", 1, "t")


def test_subjects_are_cut_to_what_sns_accepts(aws: dict[str, Any]) -> None:
    AlertPublisher(aws["topic"], event_bus=None, sns=aws["sns"]).publish(
        [Alert("anomaly", "ticket", "yield", 1, "é\n" + "x" * 200)])
    [message] = drain(aws["sqs"], aws["queues"]["from-sns"][0], 1)
    assert message["Subject"] == "x" * 100 and json.loads(message["Message"])["title"] == "é\n" + "x" * 200
