"""A step's events reach each event loop in order, in one hand-over; a closed loop loses them."""

from __future__ import annotations

import asyncio
import threading

from llamita.server.engine.delivery import Outbox


def test_events_posted_from_the_engine_thread_arrive_in_order_after_the_flush() -> None:
    async def scenario() -> list[object]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        outbox = Outbox()

        def engine_thread() -> None:
            for event in ("a", "b", "c"):
                outbox.post(loop, queue.put_nowait, event, lambda: None)
            assert queue.empty()  # nothing moves before the step ends
            outbox.flush()

        thread = threading.Thread(target=engine_thread)
        thread.start()
        got = [await queue.get() for _ in range(3)]
        thread.join()
        return got

    assert asyncio.run(scenario()) == ["a", "b", "c"]


def test_a_closed_loop_reports_its_events_lost() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    lost: list[str] = []
    outbox = Outbox()
    outbox.post(loop, lambda event: None, "token", lambda: lost.append("aborted"))
    outbox.flush()
    assert lost == ["aborted"]
