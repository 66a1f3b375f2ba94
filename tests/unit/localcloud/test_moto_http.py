"""localcloud's moto server keeps connections open between requests and answers as werkzeug does.

Real servers on 127.0.0.1 (ephemeral ports): `MotoServer` with moto's app next to werkzeug's own
server with moto's request handler (what localcloud ran before), the same SDK calls to both;
and small WSGI apps for the framing cases (a body the app never reads, chunked bodies, errors,
shutdown with idle connections).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3.connection
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from localcloud.moto_http import MotoServer

HOST = "127.0.0.1"


def serve(server: Any) -> Any:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[Any, Any]]:
    app = DomainDispatcherApplication(create_backend_app)
    ours = serve(MotoServer(HOST, 0, app))
    theirs = serve(make_server(HOST, 0, app, True, request_handler=MotoRequestHandler))
    try:
        yield ours, theirs
    finally:
        for server in (ours, theirs):
            server.shutdown()
            server.server_close()


def client(server: Any, service: str = "dynamodb") -> Any:
    return boto3.client(service, endpoint_url=f"http://{HOST}:{server.server_address[1]}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


class Connects:
    """Counts the TCP connections urllib3 (boto3) opens."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = urllib3.connection.HTTPConnection.connect

        def connect(conn: Any) -> Any:
            self.count += 1
            return original(conn)

        monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", connect)


def test_sdk_calls_share_one_connection_and_get_werkzeugs_answers(servers: tuple[Any, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = servers
    connects = Connects(monkeypatch)
    answers: dict[str, list] = {"ours": [], "theirs": []}
    clients = {}
    for name, server in (("ours", ours), ("theirs", theirs)):
        clients[name] = client(server)

        def record(http_response: Any, model: Any, _name: str = name, **_: Any) -> None:
            headers = {k.lower(): v for k, v in http_response.headers.items()
                       if k.lower() not in ("date", "x-amzn-requestid", "connection", "transfer-encoding")}
            answers[_name].append((model.name, http_response.status_code, headers, http_response.content))

        clients[name].meta.events.register("after-call.dynamodb", record)
    table = "keepalive-test"
    connects.count = 0
    clients["ours"].create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                 AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    answers["ours"].clear()
    for name in ("ours", "theirs"):  # the same calls, on the same moto state, through each server
        c = clients[name]
        for i in range(5):
            c.put_item(TableName=table, Item={"k": {"S": f"k{i}"}, "v": {"N": str(i)}, "b": {"B": b"\x00\x01"}})
            c.get_item(TableName=table, Key={"k": {"S": f"k{i}"}})
        c.batch_get_item(RequestItems={table: {"Keys": [{"k": {"S": f"k{i}"}} for i in range(5)]}})
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            c.get_item(TableName="missing", Key={"k": {"S": "x"}})
        with pytest.raises(c.exceptions.ConditionalCheckFailedException):
            c.put_item(TableName=table, Item={"k": {"S": "k0"}}, ConditionExpression="attribute_not_exists(k)")
    assert answers["ours"] == answers["theirs"]
    assert len(answers["ours"]) == 13 and {a[1] for a in answers["ours"]} == {200, 400}
    # 27 calls: one connection to our server (CreateTable's), one per call to werkzeug's.
    assert connects.count == 1 + 13
    assert len(ours.open_connections) == 1


def test_s3_objects_and_head_requests_keep_the_connection(servers: tuple[Any, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ours, _ = servers
    connects = Connects(monkeypatch)
    s3 = client(ours, "s3")
    s3.create_bucket(Bucket="keepalive-bucket")
    body = bytes(range(256)) * 1000
    s3.put_object(Bucket="keepalive-bucket", Key="a/b.bin", Body=body)
    assert s3.head_object(Bucket="keepalive-bucket", Key="a/b.bin")["ContentLength"] == len(body)
    assert s3.get_object(Bucket="keepalive-bucket", Key="a/b.bin")["Body"].read() == body
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="keepalive-bucket", Key="missing")
    assert s3.list_objects_v2(Bucket="keepalive-bucket")["KeyCount"] == 1
    assert connects.count == 1


def _app_ignoring_the_body(environ: dict, start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def plain_server() -> Iterator[Any]:
    server = serve(MotoServer(HOST, 0, _app_ignoring_the_body))
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_the_app_never_reads_does_not_become_the_next_request(plain_server: Any) -> None:
    conn = http.client.HTTPConnection(HOST, plain_server.server_address[1], timeout=10)
    sneaky = b"GET /injected HTTP/1.1\r\nHost: x\r\n\r\n"
    conn.request("POST", "/first", body=sneaky)
    first = conn.getresponse()
    assert (first.status, first.read(), first.getheader("Connection")) == (200, b"POST /first", None)
    conn.request("GET", "/second")
    second = conn.getresponse()
    assert (second.status, second.read()) == (200, b"GET /second")
    conn.close()


def test_expect_100_continue_is_answered_and_the_connection_kept(plain_server: Any) -> None:
    sock = socket.create_connection((HOST, plain_server.server_address[1]), timeout=10)
    sock.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
    sock.sendall(b"hello")
    reply = b""
    while not reply.endswith(b"PUT /upload"):
        reply += sock.recv(4096)
    sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
    reply = b""
    while not reply.endswith(b"GET /next"):
        reply += sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200")
    sock.close()


def test_chunked_bodies_and_errors_are_answered_then_the_connection_closes(plain_server: Any) -> None:
    port = plain_server.server_address[1]
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("POST", "/chunked", body=iter([b"abc", b"def"]), encode_chunked=True)
    answer = conn.getresponse()
    assert (answer.status, answer.read(), answer.getheader("Connection")) == (200, b"POST /chunked", "close")
    conn.close()
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("GET", "/boom")
    answer = conn.getresponse()
    assert answer.status == 500 and b"Internal Server Error" in answer.read()
    assert conn.sock is None or conn.sock.recv(1) == b""  # the server closed its end


def test_shutdown_closes_idle_keep_alive_connections() -> None:
    server = serve(MotoServer(HOST, 0, _app_ignoring_the_body))
    sock = socket.create_connection((HOST, server.server_address[1]), timeout=10)
    sock.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while not reply.endswith(b"GET /idle"):
        reply += sock.recv(4096)
    assert b"HTTP/1.1 200" in reply
    server.shutdown()
    server.server_close()
    assert sock.recv(4096) == b""  # EOF: nothing is served after shutdown
    sock.close()
