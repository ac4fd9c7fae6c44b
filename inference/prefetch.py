"""Background read-ahead: decode the next frames while the network works on the current one."""
import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Yield from `items`, produced by a background thread at most `depth` items ahead.

    An exception in the producer is re-raised in the consumer at the point it occurred.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
        except BaseException as error:  # handed over to the consumer
            buffer.put((_DONE, error))
            return
        buffer.put((_DONE, None))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
