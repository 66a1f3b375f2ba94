"""`make demo` end to end, and `localcloud start` as a user runs it (then Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_runs_end_to_end_and_writes_its_summary() -> None:
    result = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(steps) == 8, result.stdout
    summary = json.loads((ROOT / "reports" / "demo" / "summary.json").read_text())
    assert summary["data"]["weeks"] == 13 and 0.05 <= summary["data"]["fail_rate"] <= 0.10
    fates = [v["fate"] for v in summary["versions"].values()]
    assert fates == ["champion (first model)", "promoted", "rolled_back"]
    assert [s["percent"] for s in summary["canary_v2"]["stages"]] == [1, 10, 50, 100]
    assert summary["canary_v2"]["stages"][-1]["decision"] == "promote"
    [first_stage] = summary["canary_v3"]["stages"]
    assert first_stage["percent"] == 1 and first_stage["reasons"] == ["error_rate"]
    assert first_stage["checks"]["error_rate"]["observed"] == 1.0
    assert summary["audit"]["ok"] is True and summary["audit"]["records"] > 10


def test_start_serves_everything_until_interrupted() -> None:
    api, lam, moto = free_port(), free_port(), free_port()
    env = {**os.environ, "LOCALCLOUD_API_KEY": "k" * 24, "LOCALCLOUD_ADMIN_API_KEY": "a" * 24}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localcloud.cli", "start", "--port", str(api), "--lambda-port", str(lam),
         "--moto-port", str(moto)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", api), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.time() < deadline, "localcloud start did not open its API port"
                time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{api}/health?deep=true", headers={"x-api-key": "k" * 24})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            assert json.loads(response.read())["status"] == "ok"
        # The AWS endpoint is a real moto server that the AWS SDK (or CLI) can inspect.
        dynamodb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{moto}", region_name="us-east-1",
                                aws_access_key_id="x", aws_secret_access_key="x")
        assert "mlops-RegistryTable" in dynamodb.list_tables()["TableNames"]
        lam_client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{lam}", region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="x")
        answer = lam_client.invoke(FunctionName="HealthFunction", Payload=b"{}")
        assert answer["FunctionError"] == "Unhandled"  # {} is not an API Gateway event
        assert json.loads(answer["Payload"].read())["errorType"] == "KeyError"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "localcloud: stopping" in err
    assert "Traceback" not in err
