"""The in-memory response store: bounded in count and age, one per app."""

from __future__ import annotations

from starlette.applications import Starlette

from llamita.server.api.openai.responses_store import ResponseStore, StoredResponse, response_store


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stored(n: int) -> StoredResponse:
    return StoredResponse({"id": f"resp_{n}"}, [{"role": "user", "content": str(n)}])


def test_the_oldest_goes_first_when_full() -> None:
    store = ResponseStore(max_entries=2)
    for n in range(3):
        store.put(f"resp_{n}", stored(n))
    assert store.get("resp_0") is None
    assert store.get("resp_2") == stored(2) and len(store) == 2


def test_responses_expire() -> None:
    clock = Clock()
    store = ResponseStore(max_age_s=60, clock=clock)
    store.put("resp_a", stored(1))
    clock.now += 30
    store.put("resp_b", stored(2))
    clock.now += 31
    assert store.get("resp_a") is None and store.get("resp_b") == stored(2)
    clock.now += 30
    assert store.get("resp_b") is None and len(store) == 0


def test_one_store_per_app() -> None:
    first, second = Starlette(), Starlette()
    assert response_store(first) is response_store(first)
    assert response_store(first) is not response_store(second)
