"""`make demo`: the whole path on the embedded local cloud, one line per step.

Provision the template into moto, invoke a function, call the API over real HTTP on
127.0.0.1 (with and without its key), invoke through the Lambda endpoint with boto3, run the
canary-rollout state machine on the virtual clock, and let a week pass so the weekly
retraining schedule fires. Writes reports/demo/summary.json with the key numbers.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from localcloud import schedule, sfn
from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.lambda_endpoint import LambdaEndpoint
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "reports" / "demo"


def step(n: int, text: str) -> None:
    print(f"[{n}] {text}", flush=True)


def http_get(url: str, key: str | None = None) -> tuple[int, Any, float]:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key else {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, json.loads(body or b"null"), (time.perf_counter() - t0) * 1000


def main() -> int:
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    stack = load_stack(ROOT / "template.yaml")
    with LocalCloud(stack, log_sink=lambda fid, line: None) as cloud:
        step(1, f"provisioned {len(stack.tables)} tables, {len(stack.buckets)} buckets, "
                f"{len(stack.state_machines)} state machines, {len(stack.api_keys)} API keys into moto at {cloud.endpoint_url}")

        deep = {"resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {},
                "queryStringParameters": {"deep": "true"},
                "requestContext": {"requestId": "demo", "stage": stack.apis["MlopsApi"].stage,
                                   "resourcePath": "/health", "httpMethod": "GET"},
                "body": None, "isBase64Encoded": False}
        invocation = cloud.runtime.invoke("HealthFunction", json.dumps(deep))
        body = json.loads(invocation.json()["body"])
        step(2, f"invoke HealthFunction (cold start, init {invocation.init_ms:.0f} ms): {body['status']}, "
                f"{sum(v == 'ok' for v in body['checks'].values())}/{len(body['checks'])} tables answer")
        summary["invoke"] = {"status": body["status"], "init_ms": round(invocation.init_ms or 0, 1)}

        key = cloud.api_keys["ApiKey"]
        with ApiServer(cloud.runtime, stack, cloud.api_keys, host="127.0.0.1", port=0, quiet=True) as api:
            no_key, no_key_body, _ = http_get(f"{api.url}/health")
            ok, ok_body, _ = http_get(f"{api.url}/health?deep=true", key)
            latencies = sorted(http_get(f"{api.url}/health", key)[2] for _ in range(50))
            unknown, unknown_body, _ = http_get(f"{api.url}/nowhere", key)
        p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95) - 1]
        step(3, f"GET /health over HTTP: {no_key} {no_key_body['message']} without a key, {ok} {ok_body['status']} with it; "
                f"unknown route {unknown} {unknown_body['message']}; warm p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        summary["api"] = {"without_key": no_key, "with_key": ok, "unknown_route": unknown,
                          "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "requests": len(latencies) + 3}

        with LambdaEndpoint(cloud.runtime, host="127.0.0.1", port=0, quiet=True) as endpoint:
            client = boto3.client("lambda", endpoint_url=endpoint.url, region_name=stack.region,
                                  aws_access_key_id="local", aws_secret_access_key="local")
            answer = client.invoke(FunctionName="HealthFunction", Payload=json.dumps(deep).encode())
            status = json.loads(answer["Payload"].read())["statusCode"]
        step(4, f"boto3 lambda.invoke through the Lambda endpoint: HTTP {answer['StatusCode']}, handler statusCode {status}")
        summary["lambda_endpoint"] = {"status": answer["StatusCode"], "handler_status": status}

        # Two registered versions (the sample training event, trained twice by TrainFunction), v1
        # made champion, then the canary rollout of v2 moves the traffic and promotes it.
        training = json.loads((ROOT / "events" / "TrainFunction.json").read_text())
        trained = [cloud.invoke("TrainFunction", training)["version"] for _ in range(2)]
        cloud.invoke("ModelAdminFunction", {"model": "yield", "alias": "champion", "version": trained[0],
                                            "reason": "demo", "actor": "demo"})
        rollout = sfn.execute(cloud, "CanaryRolloutStateMachine",
                              {"model": "yield", "challenger": trained[1], "stages": [1, 10, 50, 100],
                               "bake_seconds": 3600})
        item = cloud.client("dynamodb").get_item(TableName=stack.tables["DeploymentsTable"].name,
                                                 Key={"model": {"S": "yield"}, "sk": {"S": "DEPLOYMENT"}})["Item"]
        step(5, f"trained and registered v{trained[0]} and v{trained[1]}; canary rollout of v{trained[1]} "
                f"1->10->50->100%: {rollout.status} in {rollout.wall_seconds:.2f} s wall, "
                f"{rollout.virtual_seconds / 3600:.0f} h of bake on the virtual clock; champion now v{item['champion']['N']}")
        summary["canary"] = {"status": rollout.status, "wall_seconds": round(rollout.wall_seconds, 3),
                             "virtual_hours": rollout.virtual_seconds / 3600, "events": len(rollout.events),
                             "versions": trained, "champion": int(item["champion"]["N"])}

        firings = schedule.advance(cloud, schedule.parse_duration("7d"))
        runs = cloud.client("dynamodb").query(
            TableName=stack.tables["RegistryTable"].name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": {"S": "MODEL#yield"}, ":run": {"S": "RUN#"}},
        )["Items"]
        fired = ", ".join(f"{f.rule_name} at {f.time:%a %Y-%m-%d %H:%M} UTC -> {f.status}" for f in firings)
        step(6, f"a week passes on the virtual clock: {len(firings)} schedule firing(s) ({fired}); "
                f"{len(runs)} retraining run(s) recorded in the registry")
        summary["schedule"] = {"firings": [{"rule": f.rule_name, "time": f.time.isoformat(), "status": f.status}
                                           for f in firings], "retraining_runs": len(runs)}

    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    step(7, f"done in {summary['wall_seconds']} s; summary in {REPORT_DIR.relative_to(ROOT)}/summary.json")
    ok = (summary["api"]["without_key"] == 403 and summary["api"]["with_key"] == 200
          and rollout.status == "SUCCEEDED" and len(runs) >= 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
