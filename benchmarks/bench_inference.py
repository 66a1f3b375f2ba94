"""Inference: the handler warm in-process, its cold start, the ONNX call, and the API under load.

Setup: `localcloud start` in a child process (moto on 127.0.0.1, the local Lambda service, the
API and the Lambda endpoint, as a user runs it); TrainFunction trains the yield model on the
integration tests' seeded data (400 label rows, point-in-time joined), ModelAdminFunction makes
it champion, and 500 devices get fresh features in the online store.

Measured, in one run:

- handler warm p50/p99 in this process (`functions/inference/app.py` imported as Lambda
  imports it, AWS calls going to the child's moto): one row by explicit features, and by entity
  id (online feature lookup + on-demand features). Peer: the same AWS calls alone (the online
  GetItem and the log PutItem), so the difference is our code. Targets: p50 <= 2 ms, p99 <= 5 ms;
- the ONNX model call (`ServingModel.predict_one`, dict in) vs a bare `InferenceSession.run`
  on a ready array (target: within 3x);
- cold start (fresh interpreter: import the handler, then the first request, which loads the
  model: registry read, S3 artifact, sha256, session), median of 5, vs a handler that fetches a
  pickled scikit-learn pipeline from S3, unpickles it and predicts (target <= 500 ms); and the
  first entity-id request of a fresh interpreter (it imports the online store, pynamodb);
- through the API (`localcloud start`'s ApiServer): 32 client threads in a separate process,
  each pacing its requests so that together they offer 1000 requests/s, for at most 25 s and
  25 000 requests, only to 127.0.0.1; latency counts from each request's scheduled send time
  (queueing included), and from the actual send; then 10 s of the same with explicit features
  (one AWS call per request instead of two). Target: p95 <= 50 ms at >= 1000 requests/s. What it
  reaches is recorded.

Writes benchmarks/results/inference.json. Run: ``.venv/bin/python benchmarks/bench_inference.py``.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import pickle
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"  # the benchmark only ever talks to the loopback interface
RESULTS = HERE / "results" / "inference.json"
sys.path[:0] = [str(ROOT / "layers/common/python"), str(ROOT / "tests/integration"), str(HERE)]

from bench_invoke import percentile  # noqa: E402
from yield_models import explicit_features, training_event  # noqa: E402

API_KEY = "bench-inference-key-0123456789"
ADMIN_KEY = "bench-inference-admin-0123456789"
ENTITIES = 500
COLD_RUNS = 5

COLD_OURS = r"""
import time; t0 = time.perf_counter()
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
t_import = time.perf_counter()
event = json.loads(sys.argv[3])
class Context:
    function_name, memory_limit_in_mb = "mlops-InferenceFunction", "1024"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mlops-InferenceFunction"
    aws_request_id = "cold-" + str(time.time_ns())
event["requestContext"]["requestId"] = Context.aws_request_id
answer = app.lambda_handler(event, Context())
t_first = time.perf_counter()
heavy = sorted(m for m in ("sklearn", "scipy", "skl2onnx") if m in sys.modules)
print(json.dumps({"ms": (t_first - t0) * 1000, "import_ms": (t_import - t0) * 1000,
                  "status": answer["statusCode"], "heavy": heavy}))
"""

COLD_PICKLE = r"""
import time; t0 = time.perf_counter()
import json, pickle, sys
import boto3
import numpy as np
s3 = boto3.client("s3")
t_import = time.perf_counter()
pipeline = pickle.loads(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].read())
row = json.loads(sys.argv[3])
p = float(pipeline.predict_proba(np.array([row], dtype=np.float64))[0, 1])
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "import_ms": (t_import - t0) * 1000, "p": p}))
"""

# What any handler serving an ONNX model from S3 with a DynamoDB registry pays before its own
# first line: the libraries and the two clients (created as mlops.aws creates them), no model.
COLD_FLOOR = r"""
import time; t0 = time.perf_counter()
import json
import numpy
import onnxruntime
import botocore.session
session = botocore.session.get_session()
session.create_client("dynamodb")
session.create_client("s3")
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def row(figure: str, value: float, unit: str, how: str, peer: str = "", peer_value: float | None = None,
        target: str = "") -> dict:
    ratio = round(value / peer_value, 3) if peer_value else None
    return {"figure": figure, "value": round(value, 4), "unit": unit, "how": how, "peer": peer,
            "peer_value": None if peer_value is None else round(peer_value, 4), "ratio": ratio, "target": target}


# -------------------------------------------------------------------------------- the cloud


class Cloud:
    """`localcloud start` in a child process, with the model trained and promoted."""

    def __init__(self) -> None:
        self.api, self.lam, self.moto = free_port(), free_port(), free_port()
        env = {**os.environ, "LOCALCLOUD_API_KEY": API_KEY, "LOCALCLOUD_ADMIN_API_KEY": ADMIN_KEY}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "localcloud.cli", "start", "--port", str(self.api), "--lambda-port", str(self.lam),
             "--moto-port", str(self.moto)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while True:
            try:
                with socket.create_connection((HOST, self.api), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("localcloud start did not come up") from None
                time.sleep(0.2)
        from localcloud.runtime import function_environment
        from localcloud.template import load_stack

        self.stack = load_stack(ROOT / "template.yaml")
        self.endpoint = f"http://{HOST}:{self.moto}"
        self.env = function_environment(self.stack.functions["InferenceFunction"], self.stack.region, self.endpoint)

    def client(self, service: str, endpoint: str | None = None) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=endpoint or self.endpoint, region_name=self.stack.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def invoke(self, function: str, event: dict) -> dict:
        answer = self.client("lambda", f"http://{HOST}:{self.lam}").invoke(
            FunctionName=function, Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read())
        if answer.get("FunctionError"):
            raise RuntimeError(f"{function} failed: {payload}")
        return payload

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def setup(cloud: Cloud) -> dict:
    trained = cloud.invoke("TrainFunction", training_event(seed=0, n_estimators=100))
    cloud.invoke("ModelAdminFunction", {"model": "yield", "alias": "champion", "version": trained["version"],
                                        "actor": "bench"})
    os.environ["AWS_ENDPOINT_URL"] = cloud.endpoint  # the online store of this process (pynamodb)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", cloud.stack.region)
    from mlops.features.online_store import OnlineStore
    from mlops.features.yield_example import device_parametrics

    now = datetime.now(timezone.utc)
    micros = int((now - timedelta(hours=1)).timestamp() * 1_000_000)
    rows = [{"device_id": f"B-{i:04d}", "event_timestamp": micros, **explicit_features(100 + i)} for i in range(ENTITIES)]
    OnlineStore(cloud.stack.tables["FeaturesTable"].name).write(device_parametrics, rows, now=now)
    return trained


class Context:
    """The attributes of Lambda's context object that the handler and Powertools read."""

    function_name = "mlops-InferenceFunction"
    memory_limit_in_mb = "1024"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mlops-InferenceFunction"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def api_event(body: dict, request_id: str) -> dict:
    return {"resource": "/predict", "path": "/predict", "httpMethod": "POST", "headers": {},
            "requestContext": {"requestId": request_id, "resourcePath": "/predict", "httpMethod": "POST"},
            "body": json.dumps(body), "isBase64Encoded": False}


# -------------------------------------------------------------------------------- in-process


def handler_rows(cloud: Cloud, n: int, warmup: int) -> tuple[list[dict], Any]:
    os.environ.update({k: v for k, v in cloud.env.items() if k not in ("PATH",)})
    sys.path[:0] = [str(ROOT / "functions/inference")]
    import app  # noqa: PLC0415 - the handler, imported as Lambda imports it

    explicit = {"model": "yield", "features": explicit_features(7), "request": {"vdd_setpoint": 1.2}}
    sink = io.StringIO()

    last_entity_request = [""]
    aws_ns = [0]
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def timed_call(self: Any, operation: str, params: dict) -> Any:  # every AWS call the handler makes
        t0 = time.perf_counter_ns()
        try:
            return original(self, operation, params)
        finally:
            aws_ns[0] += time.perf_counter_ns() - t0

    def timed(make_body, count: int, tag: str, own: list[float] | None = None) -> list[float]:
        samples = []
        for i in range(count):
            event = api_event(make_body(i), f"{tag}-{i}-{time.time_ns()}")
            context = Context(event["requestContext"]["requestId"])
            aws_ns[0] = 0
            with redirect_stdout(sink):  # the EMF lines, as Lambda would print them
                t0 = time.perf_counter_ns()
                answer = app.lambda_handler(event, context)
                total = time.perf_counter_ns() - t0
            samples.append(total / 1e6)
            if own is not None:
                own.append((total - aws_ns[0]) / 1e6)
            if answer["statusCode"] != 200:
                raise RuntimeError(answer)
            last_entity_request[0] = event["requestContext"]["requestId"]
            sink.seek(0)
            sink.truncate()
        return samples

    botocore.client.BaseClient._make_api_call = timed_call

    by_entity = lambda i: {"model": "yield", "entity_id": f"B-{i % ENTITIES:04d}", "request": {"vdd_setpoint": 1.2}}  # noqa: E731
    timed(lambda i: explicit, warmup, "warm")
    timed(by_entity, warmup, "warm")
    own_explicit: list[float] = []
    own_entity: list[float] = []
    ours_explicit = timed(lambda i: explicit, n, "explicit", own_explicit)
    ours_entity = timed(by_entity, n, "entity", own_entity)
    botocore.client.BaseClient._make_api_call = original

    # Peer: the AWS calls the entity path makes, alone (GetItem of the online row, PutItem of the log).
    dynamodb = app._dynamodb
    features_table = cloud.stack.tables["FeaturesTable"].name
    predictions = cloud.stack.tables["PredictionsTable"].name
    logged = dynamodb.get_item(TableName=predictions, Key={"request_id": {"S": last_entity_request[0]}})["Item"]
    bare = []
    online_pynamo = app.predictor.online._connection()
    for i in range(n):
        t0 = time.perf_counter_ns()
        online_pynamo.dispatch("GetItem", {"TableName": features_table, "Key": {
            "entity_key": {"S": f"device_id=B-{i % ENTITIES:04d}"}, "view": {"S": "device_parametrics"}}})
        dynamodb.put_item(TableName=predictions, Item={**logged, "request_id": {"S": f"bare-{i}"}})
        bare.append((time.perf_counter_ns() - t0) / 1e6)
    bare_put = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        dynamodb.put_item(TableName=predictions, Item={**logged, "request_id": {"S": f"bare-put-{i}"}})
        bare_put.append((time.perf_counter_ns() - t0) / 1e6)

    how = (f"N={n} sequential calls of the handler in this process after {warmup} warm-up, perf_counter_ns around "
           "each; moto in `localcloud start` (a child process) answers the AWS calls")
    rows = []
    for q, target in ((50, "<= 2 ms"), (99, "<= 5 ms")):
        rows.append(row(f"handler warm p{q}, one row by entity id (online lookup + on-demand + ONNX + log)",
                        percentile(ours_entity, q), "ms", how,
                        f"the same AWS calls alone p{q} (online GetItem + log PutItem)", percentile(bare, q), target))
    for q, target in ((50, "<= 2 ms"), (99, "<= 5 ms")):
        rows.append(row(f"handler warm p{q}, one row by explicit features (ONNX + log)",
                        percentile(ours_explicit, q), "ms", how, f"the log PutItem alone p{q}",
                        percentile(bare_put, q), target))
    own_how = ("same calls; per call, the handler's time minus the time spent inside botocore's _make_api_call "
               "(the AWS calls: serialization, HTTP to moto, moto, parsing)")
    for q, target in ((50, "<= 2 ms"), (99, "<= 5 ms")):
        rows.append(row(f"handler warm p{q} without its AWS calls, by entity id (our code)",
                        percentile(own_entity, q), "ms", own_how, "", None, target))
    for q, target in ((50, "<= 2 ms"), (99, "<= 5 ms")):
        rows.append(row(f"handler warm p{q} without its AWS call, explicit features (our code)",
                        percentile(own_explicit, q), "ms", own_how, "", None, target))
    return rows, app


def onnx_rows(app: Any, n: int) -> list[dict]:
    import numpy as np

    loaded = next(iter(app.predictor.models._loaded.values()))
    model = loaded.model
    features = {**explicit_features(9), "vdd_idd_ratio": 0.003, "vdd_margin": 0.01}
    x = np.array([[features[f] for f in model.signature.features]], dtype=np.float32)
    feed, outputs, session = {model.signature.input_name: x}, [model.signature.output_name], model.session
    ours, bare = [], []
    for _ in range(200):
        model.predict_one(features)
        session.run(outputs, feed)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        model.predict_one(features)
        ours.append((time.perf_counter_ns() - t0) / 1e6)
        t0 = time.perf_counter_ns()
        session.run(outputs, feed)
        bare.append((time.perf_counter_ns() - t0) / 1e6)
    how = (f"{model.signature.n_features} features, gradient boosting (100 trees), {n} calls alternating with the peer; "
           "dict in, checks + tensor + run + float out")
    return [row(f"ONNX model call p{q} (ServingModel.predict_one)", percentile(ours, q), "ms", how,
                f"bare InferenceSession.run p{q} (same session, ready array)", percentile(bare, q), "within 3x of bare run")
            for q in (50, 99)]


# -------------------------------------------------------------------------------- cold start


def cold_rows(cloud: Cloud, trained: dict) -> list[dict]:
    env = {**cloud.env}
    explicit = api_event({"model": "yield", "features": explicit_features(7), "request": {"vdd_setpoint": 1.2}}, "c")
    entity = api_event({"model": "yield", "entity_id": "B-0001", "request": {"vdd_setpoint": 1.2}}, "c")
    paths = [str(ROOT / "functions/inference"), str(ROOT / "layers/common/python")]

    def run(script: str, *args: str) -> dict:
        out = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                             timeout=120, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    ours = [run(COLD_OURS, *paths, json.dumps(explicit)) for _ in range(COLD_RUNS)]
    ours_entity = [run(COLD_OURS, *paths, json.dumps(entity)) for _ in range(COLD_RUNS)]
    if any(r["status"] != 200 or r["heavy"] for r in ours + ours_entity):
        raise RuntimeError(f"cold runs failed or imported training libraries: {ours + ours_entity}")

    # The peer: the same model as a pickled scikit-learn pipeline in S3.
    from mlops.models.training import TrainingConfig, train_model
    from mlops.models.training_job import parse_training_request, prepare

    data = prepare(parse_training_request(training_event(seed=0, n_estimators=100)))
    pipeline = train_model(data.features, data.labels, data.timestamps,
                           TrainingConfig(n_estimators=100, seed=0), code_version="bench").pipeline
    bucket = cloud.stack.buckets["ArtifactsBucket"].name
    cloud.client("s3").put_object(Bucket=bucket, Key="bench/pipeline.pkl", Body=pickle.dumps(pipeline))
    values = [explicit_features(7)[f] if f in explicit_features(7) else 0.0 for f in data.features]
    peer = [run(COLD_PICKLE, bucket, "bench/pipeline.pkl", json.dumps(values)) for _ in range(COLD_RUNS)]
    floor = [run(COLD_FLOOR) for _ in range(COLD_RUNS)]

    med = lambda runs, key="ms": statistics.median(r[key] for r in runs)  # noqa: E731
    how = (f"fresh interpreter timed from its first line: import the handler, then the first request (registry read, "
           f"S3 artifact, sha256 check, session, ONNX, log write), median of {COLD_RUNS}")
    return [
        row("cold start: import + first request (explicit features, loads the model)", med(ours), "ms", how,
            "fetch a pickled scikit-learn pipeline from S3 + unpickle + predict_proba (import included)", med(peer),
            "<= 500 ms"),
        row("cold start, of which imports (boto3 + clients, onnxruntime, Powertools, mlops)", med(ours, "import_ms"),
            "ms", "same runs, up to the end of `import app`", "the pickle handler's imports (boto3, numpy)",
            med(peer, "import_ms")),
        row("cold start: import + first request by entity id (also imports the online store)", med(ours_entity), "ms",
            how.replace("explicit", "entity"), "the explicit-features cold start", med(ours)),
        row("cold start floor: import numpy + onnxruntime + botocore, create the DynamoDB and S3 clients", med(floor),
            "ms", f"fresh interpreter timed from its first line, nothing else (no model, no request, no handler), "
            f"median of {COLD_RUNS}: what any ONNX-from-S3 serving handler on these libraries pays first",
            "our cold start (explicit features)", med(ours), "<= 500 ms (the issue's cold-start target)"),
    ]


# -------------------------------------------------------------------------------- the API


def run_client(port: int, concurrency: int, rate: float, seconds: float, max_requests: int,
               explicit: bool = False) -> dict:
    """Each thread sends POST /predict on its own keep-alive connection at scheduled times so
    that together they offer ``rate`` requests/s; latency counts from the scheduled time (and,
    as ``service_ms``, from the moment the request was actually sent)."""
    per_thread_interval = concurrency / rate
    per_thread_count = max_requests // concurrency
    latencies: list[float] = []
    service: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    bodies = [json.dumps({"model": "yield", "entity_id": f"B-{i:04d}", "request": {"vdd_setpoint": 1.2}}).encode()
              for i in range(ENTITIES)]
    if explicit:
        bodies = [json.dumps({"model": "yield", "features": explicit_features(100 + i),
                              "request": {"vdd_setpoint": 1.2}}).encode() for i in range(ENTITIES)]
    headers = {"Content-Type": "application/json", "x-api-key": API_KEY}

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        local, served, codes = [], [], {}
        start.wait()
        t_start = t0_global[0] + k * per_thread_interval / concurrency
        for i in range(per_thread_count):
            scheduled = t_start + i * per_thread_interval
            if scheduled - t0_global[0] > seconds or time.perf_counter() - t0_global[0] > seconds:
                break  # the window is over: requests not sent by then were offered but never served
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                conn.request("POST", "/predict", body=bodies[(k * 7919 + i) % ENTITIES], headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                status = 0
            done = time.perf_counter()
            local.append((done - scheduled) * 1000)
            served.append((done - sent) * 1000)
            codes[status] = codes.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(local)
            service.extend(served)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    t0_global = [0.0]
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    t0_global[0] = time.perf_counter() + 0.05
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0_global[0]
    return {"latencies_ms": latencies, "service_ms": service, "wall_s": wall, "statuses": statuses}


def warm_up(port: int, concurrency: int, explicit: bool, rounds: int = 3) -> None:
    """Bring every execution environment the run will use up to warm: rounds of ``concurrency``
    simultaneous requests, each waited for (cold starts on two cores take seconds when they all
    happen at once; the measured run should not start in the middle of them)."""
    body = ({"model": "yield", "features": explicit_features(3)} if explicit
            else {"model": "yield", "entity_id": "B-0000"})
    data = json.dumps({**body, "request": {"vdd_setpoint": 1.2}}).encode()
    statuses: list[int] = []

    def one() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        try:
            conn.request("POST", "/predict", body=data,
                         headers={"Content-Type": "application/json", "x-api-key": API_KEY})
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        except OSError:
            statuses.append(0)
        finally:
            conn.close()

    # Cold starts in growing batches (4, 8, 16, then ``rounds`` rounds of ``concurrency``, up to
    # 3 more while the last one still failed): 32 simultaneous cold starts on two cores can exceed
    # the 10 s init timeout, and an environment that timed out starts cold again next round.
    sizes = [n for n in (4, 8, 16) if n < concurrency] + [concurrency] * (rounds + 3)
    for done, size in enumerate(sizes, start=1):
        statuses.clear()
        threads = [threading.Thread(target=one) for _ in range(size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if size == concurrency and done >= len(sizes) - 3 and statuses == [200] * concurrency:
            break
    if statuses != [200] * concurrency:
        raise RuntimeError(f"warm-up answers of the last round: {statuses}")


def api_rows(cloud: Cloud, concurrency: int, rate: float, seconds: float, max_requests: int,
             explicit: bool = False) -> list[dict]:
    def client(rate_: float, seconds_: float, count: int) -> dict:
        out = subprocess.run([sys.executable, __file__, "--client", "--port", str(cloud.api), "--concurrency",
                              str(concurrency), "--rate", str(rate_), "--seconds", str(seconds_),
                              "--max-requests", str(count), *(["--explicit"] if explicit else [])],
                             check=True, capture_output=True, text=True, timeout=seconds_ + 120)
        return json.loads(out.stdout)

    warm_up(cloud.api, concurrency, explicit)
    result = client(rate, seconds, max_requests)
    lat, served = result["latencies_ms"], result["service_ms"]
    ok = result["statuses"].get("200", 0)
    achieved = len(lat) / result["wall_s"]
    what = "explicit features" if explicit else "entity id"
    offered = int(min(max_requests, rate * seconds))
    how = (f"{len(lat)} POST /predict by {what} answered of {offered} offered ({rate:.0f} req/s for {seconds:.0f} s, "
           f"at most {max_requests}) by {concurrency} threads in a separate process, each on a keep-alive connection, "
           f"127.0.0.1; a request not sent by the end of the window was never served; answers {result['statuses']}")
    rows = [row(f"API p{q} by {what}, {concurrency} clients offering {rate:.0f} req/s (from the scheduled time)",
                percentile(lat, q), "ms", how + "; latency from each request's scheduled send time (queueing included)",
                f"p{q} from the actual send", percentile(served, q), "p95 <= 50 ms" if q == 95 else "")
            for q in (50, 95, 99)]
    rows.append(row(f"API throughput reached by {what}, {concurrency} clients", achieved, "req/s", how, "offered",
                    rate, ">= 1000 req/s"))
    rows.append(row(f"API answers that were 200, by {what}", 100.0 * ok / max(1, len(lat)), "%", how))
    return rows


def moto_client(endpoint: str, table: str, concurrency: int, seconds: float) -> dict:
    """PutItem of prediction-sized items from ``concurrency`` threads for ``seconds``."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    item = {"inputs": {"S": json.dumps(explicit_features(1))}, "probability": {"N": "0.5"}, "ts": {"S": "2026"}}
    counts = [0] * concurrency
    deadline = time.perf_counter() + seconds

    def worker(k: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            client.put_item(TableName=table, Item={**item, "request_id": {"S": f"moto-{k}-{i}"}})
            i += 1
        counts[k] = i

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"calls": sum(counts), "wall_s": time.perf_counter() - t0}


def moto_rows(cloud: Cloud, concurrency: int, seconds: float = 8.0) -> list[dict]:
    def put_rate(port: int) -> dict:
        out = subprocess.run([sys.executable, __file__, "--moto-client", "--port", str(port), "--concurrency",
                              str(concurrency), "--seconds", str(seconds)],
                             check=True, capture_output=True, text=True, timeout=seconds + 120)
        return json.loads(out.stdout)

    result = put_rate(cloud.moto)
    rate = result["calls"] / result["wall_s"]
    # Peer: moto as shipped (its own server, no localcloud speedups), same table, same client.
    table = cloud.client("dynamodb").describe_table(TableName="mlops-PredictionsTable")["Table"]
    port = free_port()
    plain = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    break
            except OSError:
                if plain.poll() is not None or time.time() > deadline:
                    raise RuntimeError("moto.server did not come up") from None
                time.sleep(0.2)
        indexes = {kind: [{k: index[k] for k in ("IndexName", "KeySchema", "Projection")} for index in table[kind]]
                   for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes") if table.get(kind)}
        cloud.client("dynamodb", f"http://{HOST}:{port}").create_table(
            TableName=table["TableName"], KeySchema=table["KeySchema"], BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=table["AttributeDefinitions"], **indexes)
        peer = put_rate(port)
    finally:
        plain.send_signal(signal.SIGINT)
        try:
            plain.wait(30)
        except subprocess.TimeoutExpired:
            plain.kill()
            plain.wait()
    how = (f"{result['calls']} PutItem calls of prediction-sized items to the PredictionsTable from {concurrency} "
           f"threads in a separate process for {seconds:.0f} s, straight to `localcloud start`'s moto (no API, no "
           "Lambda; with localcloud.moto_speedups): the ceiling of every request that writes its prediction log; "
           f"peer: the same client against `python -m moto.server` ({peer['calls']} calls)")
    return [row(f"moto alone: DynamoDB PutItem throughput, {concurrency} clients", rate, "calls/s", how,
                "moto 5.2.5 as shipped (its own server, no localcloud speedups)", peer["calls"] / peer["wall_s"])]


# -------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="warm handler calls per case")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--max-requests", type=int, default=25_000)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--explicit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--moto-client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.moto_client:
        print(json.dumps(moto_client(f"http://{HOST}:{args.port}", "mlops-PredictionsTable", args.concurrency,
                                     min(args.seconds, 30.0))))
        return
    if args.client:
        result = run_client(args.port, args.concurrency, args.rate, min(args.seconds, 30.0), args.max_requests,
                            args.explicit)
        result["statuses"] = {str(k): v for k, v in result["statuses"].items()}
        print(json.dumps(result))
        return
    if args.seconds > 30 or args.max_requests > 30_000:
        parser.error("the API load is bounded: at most 30 s and 30 000 requests")
    cloud = Cloud()
    try:
        trained = setup(cloud)
        rows, app = handler_rows(cloud, args.n, warmup=100)
        rows += onnx_rows(app, 3000)
        rows += cold_rows(cloud, trained)
        rows += api_rows(cloud, args.concurrency, args.rate, args.seconds, args.max_requests)
        rows += api_rows(cloud, args.concurrency, args.rate, min(args.seconds, 10.0), args.max_requests // 2,
                         explicit=True)
        rows += moto_rows(cloud, args.concurrency)
    finally:
        cloud.stop()
    import onnxruntime

    data = {
        "name": "inference",
        "title": "Inference: handler, ONNX call, cold start, API under load",
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, "
                   f"1-min load average {os.getloadavg()[0]:.2f} when written",
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python benchmarks/bench_inference.py",
        "rows": rows,
        "notes": [
            f"Model: gradient boosting, 100 trees, {len(trained['features'])} features (5 stored in the online store's "
            "device_parametrics view, 2 on-demand), trained by TrainFunction; artifact "
            f"{trained['sha256'][:12]}. Every request writes its prediction log item (PutItem) before answering.",
            "The AWS calls go to localcloud's moto (localcloud.moto_speedups: the same answers computed faster; "
            "keep-alive connections, infra/localcloud/moto_http.py): each still costs a few milliseconds of moto's and "
            "botocore's Python (see the peers), more than DynamoDB adds in AWS; the 'without its AWS calls' rows are "
            "the handler's own time.",
            "Through the API everything shares the machine's two cores: the API server and moto in one process (one "
            "GIL), a worker process per execution environment, the load client; each request is an invocation plus two "
            "moto calls. The 'moto alone' row is moto's PutItem ceiling with its client in one process (32 threads), "
            "against moto's own server as the peer. The target of 1000 requests/s at p95 <= 50 ms is not reached "
            "locally; latency from the scheduled time grows with the window because the offered rate exceeds it.",
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    for r in rows:
        print(f"{r['figure']}: {r['value']} {r['unit']} (peer {r['peer'] or '-'}: {r['peer_value']}, "
              f"ratio {r['ratio']}) {r['target']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
