"""A small HTTP API over an in-memory order book, measured the way a web framework's
middleware would: in-flight requests, latency, count by status, and response bytes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from dashboards_src.http_api import (
    ACTIVE,
    DURATION,
    METHOD,
    REQUESTS,
    RESPONSE_BYTES,
    ROUTE,
    STATUS,
)

UNMATCHED = "unmatched"
"""The route of a path that matches none: raw paths would make one series per URL."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def _reply(status: int, payload: object) -> Response:
    return Response(status, json.dumps(payload, sort_keys=True).encode())


def route_of(path: str) -> str:
    """The route template a path matches; metrics are labelled by template, never by path."""
    parts = path.strip("/").split("/")
    if parts == ["orders"]:
        return "/orders"
    if len(parts) == 2 and parts[0] == "orders" and parts[1]:
        return "/orders/{id}"
    return UNMATCHED


class OrderApi:
    """``GET``/``POST /orders`` and ``GET /orders/{id}``; anything else is a 404 or 405."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, object]] = {}

    def handle(self, method: str, path: str, body: bytes = b"") -> Response:
        route = route_of(path)
        ACTIVE.add(1, {ROUTE: route})
        started = time.perf_counter()
        try:
            response = self._dispatch(method, route, path, body)
        finally:
            ACTIVE.add(-1, {ROUTE: route})
        DURATION.record(time.perf_counter() - started, {ROUTE: route, METHOD: method})
        REQUESTS.add(1, {ROUTE: route, METHOD: method, STATUS: response.status})
        RESPONSE_BYTES.add(len(response.body), {ROUTE: route})
        return response

    def _dispatch(self, method: str, route: str, path: str, body: bytes) -> Response:
        if route == UNMATCHED:
            return _reply(404, {"error": f"no route for {path}"})
        if route == "/orders" and method == "GET":
            return _reply(200, sorted(self.orders))
        if route == "/orders" and method == "POST":
            return self._create(body)
        if route == "/orders/{id}" and method == "GET":
            order = self.orders.get(path.rsplit("/", 1)[1])
            return _reply(200, order) if order else _reply(404, {"error": "no such order"})
        return _reply(405, {"error": f"{method} not allowed on {route}"})

    def _create(self, body: bytes) -> Response:
        try:
            order = json.loads(body)
        except ValueError:
            return _reply(400, {"error": "body is not JSON"})
        if not isinstance(order, dict) or not isinstance(order.get("item"), str):
            return _reply(400, {"error": "an order needs an item"})
        order_id = str(len(self.orders) + 1)
        self.orders[order_id] = order
        return _reply(201, {"id": order_id})
