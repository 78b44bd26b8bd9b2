"""A scripted HTTP server on loopback for the client's own tests: real sockets and real HTTP, with the
answers the quiz server gives and the faults it can have (slow, dropped connections, 5xx, redirects)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drop: bool = False  # close the connection without answering
    content_type: str = "application/json"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)  # when it came


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) breaks the pipe: expected here


class FakeServer:
    """Answers each (method, path) from a queue of scripted answers (the last one repeats) and records every
    request it gets."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[Seen] = []
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.requests.append(Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers),
                                            json.loads(raw) if raw else None))
                queue = server.routes.get((self.command, parts.path))
                if not queue:
                    answer = Answer(404, {"error": {"code": "not_found",
                                                    "message": f"No API endpoint at {parts.path}."}})
                else:
                    answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = (answer.body if isinstance(answer.body, bytes) else
                           answer.body.encode() if isinstance(answer.body, str) else json.dumps(answer.body).encode())
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        return Handler

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def verdict(status: str = "passed", **fields: Any) -> dict[str, Any]:
    """A submission as the server's API returns it."""
    body = {"id": 7, "url": "/api/v1/submissions/7/", "item": "grad-of-polynomial", "learner": "ada",
            "status": status, "score": 1.0 if status == "passed" else 0.6, "final_score": None, "course": "default",
            "attempt": 1, "penalty": 0.0, "late": False, "feedback": "full", "checks": [], "stdout": "", "error": None,
            "error_line": None, "code": "", "params": {}, "choices": []}
    body["final_score"] = body["score"]
    body.update(fields)
    return body
