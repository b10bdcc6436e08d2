"""Prometheus metrics of one app (its own registry, so several apps in one process never clash)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ragent_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("ragent_http_request_seconds", "HTTP request latency (to the first byte)",
                                 ["method", "route"], registry=self.registry)
        self.chats = Counter("ragent_chats_total", "Chat requests", ["api", "outcome"], registry=self.registry)
        self.chat_seconds = Histogram("ragent_chat_seconds", "Chat duration, to the answer event",
                                      ["api"], registry=self.registry,
                                      buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.tokens = Counter("ragent_chat_tokens_total", "Answer token events streamed", registry=self.registry)
        self.jobs = Counter("ragent_ingest_jobs_total", "Ingest jobs submitted", registry=self.registry)
        self.jobs_active = Gauge("ragent_ingest_jobs_active", "Ingest jobs queued or running",
                                 registry=self.registry)

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            start = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                route = request.scope.get("route")
                path = getattr(route, "path", "unmatched")
                self.requests.labels(request.method, path, str(status)).inc()
                self.latency.labels(request.method, path).observe(time.perf_counter() - start)
