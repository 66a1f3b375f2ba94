"""The HTTP server in front of localcloud's moto: werkzeug's threaded server with keep-alive.

werkzeug's development server (what moto's own server runs) answers every request with
``Connection: close`` and then waits up to 10 ms for the client to hang up, so each SDK call
pays a new TCP connection, a new server thread and that wait, and the SDK a new connection of
its own: the Lambda functions make two or three DynamoDB/S3 calls per request. werkzeug closes
because ``http.server`` cannot skip a request body the application did not read before the next
request line. Here the body is read whole first (its Content-Length is known), so the
connection can stay open for the next request: the rest (environ, moto's Flask app, the status
and headers werkzeug would send, its error page and log line) is werkzeug's. A request that
cannot be framed that way (a chunked body, HTTP/1.0, or a client that asked to close) is served
by werkzeug as before. `MotoServer.shutdown` also closes the open connections, so nothing is
served after a `LocalCloud` stops.
"""

from __future__ import annotations

import io
import socket
import threading
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler (werkzeug's, plus header-name preservation) on HTTP/1.1
    connections that stay open between requests."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one write per answer; no wait for the client's ACK

    def handle(self) -> None:
        connections = getattr(self.server, "open_connections", None)
        if connections is None:
            return super().handle()
        with self.server.connections_lock:
            connections.add(self.connection)
        try:
            super().handle()
        finally:
            with self.server.connections_lock:
                connections.discard(self.connection)

    def _keeps_alive(self) -> bool:
        length = self.headers.get("Content-Length")
        expect = self.headers.get("Expect")
        return (self.request_version == "HTTP/1.1" and not self.close_connection
                and "Transfer-Encoding" not in self.headers
                and (expect is None or expect.lower().strip(" \t") == "100-continue")
                and (length is None or (length.isascii() and length.isdigit())))

    def run_wsgi(self) -> None:
        if not self._keeps_alive():
            return super().run_wsgi()  # werkzeug's path: answers, then closes the connection
        if "Expect" in self.headers:  # 100-continue, as werkzeug answers it
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:  # the client went away mid-body
            self.close_connection = True
            return None
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            status, headers, chunks = self._call(self.server.app, environ)
        except Exception as exc:  # noqa: BLE001 - what werkzeug does: a 500 page, a log line, then close
            if self.server.passthrough_errors:
                raise
            from werkzeug.debug.tbtools import DebugTraceback

            status, headers, chunks = self._call(InternalServerError(), environ)
            self.server.log("error", f"Error on request:\n{DebugTraceback(exc).render_traceback_text()}")
            self.close_connection = True
        self._send(status, headers, b"".join(chunks))
        return None

    @staticmethod
    def _call(app: Any, environ: dict) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return chunks.append  # WSGI's write() callable

        result = app(environ, start_response)
        try:
            for data in result:
                chunks.append(data)
        finally:
            if hasattr(result, "close"):
                result.close()
        assert started, "the application returned without calling start_response"
        return started[0], started[1], chunks

    def _send(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code_str, _, msg = status.partition(" ")
        code = int(code_str)
        self.send_response(code, msg)  # the status line, Server and Date, as werkzeug sends them
        names = set()
        for key, value in headers:
            self.send_header(key, value)
            names.add(key.lower())
        head = self.command == "HEAD" or 100 <= code < 200 or code in (204, 304)
        if "content-length" not in names and not head:
            self.send_header("Content-Length", str(len(body)))  # werkzeug would chunk it instead
        if head:
            body = b""
        self._headers_buffer.append(b"\r\n")  # end_headers(), with the body in the same write
        self._headers_buffer.append(body)
        self.flush_headers()


class MotoServer(ThreadedWSGIServer):
    """werkzeug's threaded WSGI server that knows its open connections (keep-alive), so that
    `shutdown` ends them too."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(host, port, app, handler=KeepAliveRequestHandler)

    def shutdown(self) -> None:
        super().shutdown()
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
