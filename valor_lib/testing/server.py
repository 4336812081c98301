"""A local HTTP server on 127.0.0.1 that speaks the OpenAI (Chat Completions, Responses) and Gemini
(generateContent) protocols, answers with a brain callable, and injects faults on demand.

    with ModelServer(brain, faults=FaultPlan(rate=0.3), latency_s=0.5) as server:
        client = ChatClient("openai:gpt-5-mini", base_url=server.openai_base_url, api_key="sk-test")

A brain is ``brain(request: ChatRequest) -> str`` (the same protocol as toy brains): it sees the request
as the server reconstructed it from the wire. The server is threaded (one thread per connection, large
listen backlog), so it keeps up with 64+ concurrent clients; it records every request it receives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from valor_lib.clients.types import ChatRequest
from valor_lib.testing.faults import FaultPlan
from valor_lib.testing.protocols import (
    PARSERS,
    answer_body,
    blocked_body,
    count_tokens,
    empty_body,
    error_body,
)

Brain = Callable[[ChatRequest], str]
_GEMINI_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/([^/:]+):generateContent$")


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    protocol: str
    model: str
    digest: str  # sha256 of the raw body
    fault: str | None
    status: int  # HTTP status sent (0: connection dropped)
    request: ChatRequest | None  # parsed request (None when a fault preempted parsing)
    auth: str | None  # the credential header the client sent
    payload: dict[str, Any] | None  # the JSON body (None when a fault preempted parsing)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close after this long

    def log_message(self, format: str, *args: Any) -> None:  # silence per-request logging
        return

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm holds the body back
        # until the client's delayed ACK (~40 ms per call)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def do_POST(self) -> None:
        app: ModelServer = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        app._handle(self, body)

    def send_json(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, cancelled batches) are normal here; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class ModelServer:
    """The test server; start with ``start()`` or ``with``, stop with ``stop()``.

    Args:
        brain: answers each parsed request.
        faults: a :class:`FaultPlan` (default: none).
        latency_s: delay before every response (faults included), simulating model latency.
        api_key: when set, requests must carry it (``Authorization: Bearer`` or ``x-goog-api-key``),
            else they get 401.
    """

    def __init__(self, brain: Brain, *, faults: FaultPlan | None = None, latency_s: float = 0.0,
                 api_key: str | None = None):
        self.brain, self.faults, self.latency_s, self.api_key = brain, faults or FaultPlan(), latency_s, api_key
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._arrivals = 0
        self._attempts: Counter[str] = Counter()
        self._faults_by_body: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> ModelServer:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"model-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close open connections, and join the server thread."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def gemini_base_url(self) -> str:
        return self.url

    # ----- statistics --------------------------------------------------------------------------------
    def answered(self) -> list[Received]:
        """Requests answered normally (status 200 with content)."""
        with self._lock:
            return [r for r in self.received if r.status == 200 and r.fault in (None, "slow")]

    def answered_counts(self) -> Counter[str]:
        """How often each distinct request body was answered normally."""
        return Counter(r.digest for r in self.answered())

    def reset_stats(self) -> None:
        with self._lock:
            self.received.clear()
            self.max_in_flight = 0

    # ----- request handling (handler threads) --------------------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _route(self, path: str) -> tuple[str, str | None] | None:
        path = path.split("?", 1)[0]
        if path == "/v1/chat/completions":
            return "chat", None
        if path == "/v1/responses":
            return "responses", None
        match = _GEMINI_PATH.match(path)
        return ("gemini", match.group(1)) if match else None

    def _handle(self, h: _Handler, body: bytes) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._respond(h, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _respond(self, h: _Handler, body: bytes) -> None:
        route = self._route(h.path)
        digest = hashlib.sha256(body).hexdigest()
        if route is None:
            h.send_json(404, {}, json.dumps({"error": {"message": f"no such endpoint {h.path}"}}).encode())
            return
        protocol, model = route
        auth = h.headers.get("x-goog-api-key") if protocol == "gemini" else h.headers.get("Authorization")
        with self._lock:
            arrival = self._arrivals
            self._arrivals += 1
            self._attempts[digest] += 1
            fault = self.faults.decide(arrival, body, self._attempts[digest] - 1, self._faults_by_body[digest])
            if fault not in (None, "slow"):
                self._faults_by_body[digest] += 1
        time.sleep(self.latency_s + (self.faults.slow_s if fault == "slow" else 0.0))
        reply = self._reply(protocol, model, body, fault, auth)
        with self._lock:  # recorded before the client can see the answer
            self.received.append(Received(protocol, reply.model or model or "", digest, fault, reply.status,
                                          reply.request, auth, reply.payload))
        if reply.status == 0:
            h.drop()
        else:
            h.send_json(reply.status, reply.headers, reply.data)

    def _reply(self, protocol: str, model: str | None, body: bytes, fault: str | None,
               auth: str | None) -> _Reply:
        expected = None if self.api_key is None else (
            self.api_key if protocol == "gemini" else f"Bearer {self.api_key}")
        if expected is not None and auth != expected:
            return _Reply(401, _dump(error_body(protocol, 401, "invalid credentials")))
        if fault == "drop":
            return _Reply(0, b"")
        if fault in ("429", "500", "503"):
            status = int(fault)
            headers = {"Retry-After": f"{self.faults.retry_after_s:g}"} if status == 429 else {}
            return _Reply(status, _dump(error_body(protocol, status, f"injected fault {fault}")), headers)
        try:
            payload = json.loads(body)
            model = model or payload.get("model", "")
            request = PARSERS[protocol](payload)
        except (ValueError, KeyError, TypeError) as err:
            return _Reply(400, _dump(error_body(protocol, 400, f"cannot parse request: {err}")))
        if fault == "empty":
            return _Reply(200, _dump(empty_body(protocol, model)), request=request, payload=payload, model=model)
        if fault == "blocked":
            return _Reply(200, _dump(blocked_body(protocol, model)), request=request, payload=payload, model=model)
        try:
            text = self.brain(request)
        except Exception as err:
            message = f"brain failed: {type(err).__name__}: {err}"
            return _Reply(500, _dump(error_body(protocol, 500, message)), request=request, payload=payload,
                          model=model)
        data = _dump(answer_body(protocol, model, text, count_tokens(request), len(text.split())))
        if fault == "malformed":
            data = data[: len(data) // 2]
        return _Reply(200, data, request=request, payload=payload, model=model)


@dataclass
class _Reply:
    """What the server is about to send (status 0: drop the connection)."""

    status: int
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    request: ChatRequest | None = None
    payload: dict[str, Any] | None = None
    model: str | None = None


def _dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()
