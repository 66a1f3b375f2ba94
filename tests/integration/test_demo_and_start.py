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
import numpy as np
import pytest
from matplotlib import image as mpimg

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(900)  # about two minutes alone; a busy machine stretches it
def test_demo_runs_end_to_end_and_writes_its_summary_and_report() -> None:
    result = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in steps] == [f"[{n}" for n in range(1, 11)], result.stdout
    out = ROOT / "reports" / "demo"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["weeks"] == 13 and 0.05 <= summary["data"]["fail_rate"] <= 0.10
    assert summary["data"]["parametrics"] >= 100
    versions = list(summary["versions"].values())
    assert [v["fate"] for v in versions] == ["champion (first model)", "promoted", "rolled_back"]
    # the drift check, not a person, started v2's retraining: it fired on the drifted week only
    drift = summary["drift"]
    assert drift["quiet"]["started"] is None and drift["quiet"]["retrain"] is False
    fired = drift["fired"]
    assert fired["week"] == summary["data"]["drift_week"] and "drift" in fired["reasons"]
    assert "contact_res_ohm" in fired["features"] and fired["features"]["contact_res_ohm"]["psi"] > 0.2
    assert fired["started"]["name"] == versions[1]["execution"]  # the run v2 came from
    assert "drift" in versions[1]["trigger"]
    assert [s["percent"] for s in summary["canary_v2"]["stages"]] == [1, 10, 50, 100]
    assert summary["canary_v2"]["stages"][-1]["decision"] == "promote"
    [first_stage] = summary["canary_v3"]["stages"]
    assert first_stage["percent"] == 1 and first_stage["reasons"] == ["error_rate"]
    assert first_stage["checks"]["error_rate"]["observed"] == 1.0
    bandit = summary["bandit"]
    assert bandit["policy"] == "thompson_beta" and bandit["feedback"] > 0
    assert sum(bandit["probabilities"].values()) == pytest.approx(1.0)
    assert sum(a["n"] for a in bandit["arms"].values()) == bandit["feedback"]
    assert set(summary["latency_ms"]) >= {str(v) for v in list(summary["versions"])[:2]}
    assert all(p["p50"] <= p["p95"] <= p["p99"] for p in summary["latency_ms"].values())
    assert summary["requests_served"] > 1000
    assert summary["audit"]["ok"] is True and summary["audit"]["records"] > 10
    assert summary["wall_seconds"] > 0
    # the report: five real pictures and a page with the key numbers
    page = (out / "index.html").read_text()
    for name in ("latency.png", "canary.png", "psi_heatmap.png", "accuracy.png", "bandit.png"):
        pixels = mpimg.imread(out / name)
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 400, name
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50, name
        assert f'src="{name}"' in page
    assert "<th>audit chain</th><td>intact" in page
    series = json.loads((out / "series.json").read_text())
    assert {e["label"].split(":")[0] for e in series["events"]} >= {"drift check fired"}
    assert len(series["psi"]["features"]) == summary["data"]["parametrics"]


def test_start_serves_everything_until_interrupted() -> None:
    api, lam, moto = free_port(), free_port(), free_port()
    env = {**os.environ, "LOCALCLOUD_API_KEY": "k" * 24, "LOCALCLOUD_ADMIN_API_KEY": "a" * 24}
    # Ctrl-C as a terminal delivers it: a child inherits SIGINT ignored or blocked from its
    # parent, and this test process (an xdist worker that ran other tests) may have either.
    inherited = (signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if inherited[0] == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "localcloud.cli", "start", "--port", str(api),
             "--lambda-port", str(lam), "--moto-port", str(moto)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited[0])
        if inherited[1]:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
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
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # -X faulthandler: every thread's stack on stderr
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"localcloud start did not stop within 60 s of SIGINT (this process had SIGINT "
                        f"{inherited[0]!r}, blocked: {inherited[1]}); its threads:\n{err[-20000:]}")
    assert proc.returncode == 0, err
    assert "localcloud: stopping" in err
    assert "Traceback" not in err
