"""The order API's behaviour; under ``--dashgen-record`` these also record its metrics."""

from __future__ import annotations

import pytest

from example_app.api import UNMATCHED, OrderApi, route_of


@pytest.fixture
def api() -> OrderApi:
    return OrderApi()


def test_created_order_can_be_read_back(api: OrderApi) -> None:
    created = api.handle("POST", "/orders", b'{"item": "tea"}')
    assert created.status == 201
    order_id = created.json()["id"]  # type: ignore[index]
    assert api.handle("GET", f"/orders/{order_id}").json() == {"item": "tea"}
    assert api.handle("GET", "/orders").json() == [order_id]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/orders", b"not json", 400),
        ("POST", "/orders", b'{"quantity": 2}', 400),
        ("GET", "/orders/42", b"", 404),
        ("DELETE", "/orders", b"", 405),
        ("GET", "/admin", b"", 404),
    ],
)
def test_bad_requests_get_client_errors(
    api: OrderApi, method: str, path: str, body: bytes, status: int
) -> None:
    response = api.handle(method, path, body)
    assert response.status == status
    assert "error" in response.json()  # type: ignore[operator]


def test_paths_are_labelled_by_route_template() -> None:
    assert route_of("/orders") == "/orders"
    assert route_of("/orders/17/") == "/orders/{id}"
    assert route_of("/orders/17/items") == UNMATCHED
