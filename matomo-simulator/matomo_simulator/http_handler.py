"""The simulator's HTTP handler: a request recorded, a token in the URL refused, the injected fault served
(instead of or around the answer), Live's latency and hooks, Matomo's archiving lock around a report."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import typing as t
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from matomo_simulator import reports
from matomo_simulator.wire import BAD_TOKEN, HTML_PAGE, QUERY_TIMEOUT, REPORT_CALLS, Fault, MatomoError, RecordedRequest

if t.TYPE_CHECKING:
    from matomo_simulator.server import MatomoSimulator


class MatomoRequestHandler(BaseHTTPRequestHandler):
    """Answers one HTTP request for the server's simulator (`server.simulator`), as Apache in front of Matomo."""

    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""

    @property
    def sim(self) -> MatomoSimulator:
        return t.cast("MatomoSimulator", self.server.simulator)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: t.Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve(form={})

    def do_POST(self) -> None:
        raw = self._body().decode()
        self._serve(form={k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()})

    def _body(self) -> bytes:
        """The request's body: `Content-Length` bytes, or chunks (HTTP/1.1 clients such as Node's send a form
        so when they do not say its length, and Apache in front of Matomo reads them)."""
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        body = b""
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()  # the CRLF after the chunk
        while self.rfile.readline().strip():  # trailer fields, up to the empty line
            pass
        return body

    def _serve(self, form: dict[str, str]) -> None:
        sim = self.sim
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        sim.requests.append(RecordedRequest(self.command, self.path, params, "token_auth" in form, time.monotonic()))
        method = params.get("method", "")
        if "token_auth" in params:
            sim.token_in_url = True
            self._json(401, {"result": "error", "message": BAD_TOKEN})
            return
        fault = sim.take_fault(method, params.get("idSite"))
        if fault and fault.kind == "echo":
            page = f"<html><body><h1>Bad gateway</h1><pre>{form}\nPOST {self.path}</pre></body></html>"
            self._raw(fault.status, page.encode(), "text/html")
            return
        if fault and self._apply(fault):
            return
        body, status = self._answer(params, form)
        if fault and fault.kind == "mangle" and fault.transform and status == 200:
            body = fault.transform(body)
        if fault and fault.kind == "truncated":
            encoded = json.dumps(body).encode()
            self._raw(200, encoded[: max(1, len(encoded) // 2)], "application/json")
            return
        self._json(status, body)

    def _answer(self, params: dict[str, str], form: dict[str, str]) -> tuple[t.Any, int]:
        """The API's answer and status, after the time Matomo takes (and its archiving lock, for a report)."""
        sim, method = self.sim, params.get("method", "")
        if method == "Live.getLastVisitsDetails":
            for hook in list(sim.before_live_request):
                hook(sim, params)
            if sim.live_latency:
                time.sleep(sim.live_latency)
        is_report = method in REPORT_CALLS or method in reports.report_methods()
        with sim.archiving(params) if is_report else contextlib.nullcontext():
            if sim.report_latency and is_report:
                time.sleep(sim.report_latency)
            try:
                return sim.answer(params, form.get("token_auth")), 200
            except MatomoError as exc:
                return {"result": "error", "message": exc.message}, exc.status

    def _apply(self, fault: Fault) -> bool:
        """Serve the fault; True when nothing else must be sent."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind in ("truncated", "mangle"):
            return False
        if fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.close()
            return True
        if fault.kind == "status":
            self._raw(fault.status, HTML_PAGE.encode(), "text/html")
        elif fault.kind == "rate_limit":
            self._raw(429, b"Too Many Requests", "text/plain", {"Retry-After": str(fault.retry_after)})
        elif fault.kind == "html":
            self._raw(200, HTML_PAGE.encode(), "text/html")
        elif fault.kind == "empty":
            self._raw(200, b"", "application/json")
        elif fault.kind == "query_timeout":
            self._json(200, {"result": "error", "message": QUERY_TIMEOUT})
        elif fault.kind == "envelope":
            self._json(fault.status if fault.status != 500 else 200, {"result": "error", "message": fault.message})
        else:
            msg = f"unknown fault kind {fault.kind!r}"
            raise ValueError(msg)
        return True

    def _json(self, status: int, body: t.Any) -> None:
        self._raw(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _raw(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
