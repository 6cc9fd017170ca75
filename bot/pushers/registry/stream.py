"""A layer built in the background while its compressed bytes are uploaded (the cold path).

``LayerStream(source)`` runs ``source.build()`` in its own thread. Every compressed chunk
goes to the temp file (so the blob can be uploaded again from disk, and the cache filled) and
into a small bounded queue that ``chunks()`` hands to one upload request. Memory stays
constant: at most ``depth`` chunks (each about one compressed ``COPY_BUFFER``) wait in the
queue, and a slow upload slows the build down rather than piling bytes up.

When the upload gives up (``abandon()``), the build goes on into the temp file alone so that
``finish()`` still returns a complete ``Layer`` for the fallback upload. ``discard()`` stops
the build at the next chunk and removes whatever it wrote.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

from bot.pushers.registry.layers import Layer, LayerSource
from bot.pushers.registry.streamed import StreamAborted

QUEUE_DEPTH = 8
_END = object()


class _Cancelled(Exception):
    pass


class LayerStream:
    def __init__(self, source: LayerSource, depth: int = QUEUE_DEPTH) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._abandoned = threading.Event()
        self._cancelled = threading.Event()
        self._layer: Layer | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="layer-build", daemon=True)
        self.sent = 0

    def start(self) -> LayerStream:
        self._thread.start()
        return self

    # --- producer (build thread) ------------------------------------------------------------

    def _offer(self, item: object) -> None:
        while not self._abandoned.is_set():
            if self._cancelled.is_set():
                raise _Cancelled()
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return
        if self._cancelled.is_set():
            raise _Cancelled()

    def _run(self) -> None:
        try:
            self._layer = self._source.build(on_chunk=self._offer)
        except BaseException as err:  # handed to finish(); the thread itself must not die loud
            self._error = err
        finally:
            with contextlib.suppress(_Cancelled):
                self._offer(_END)

    # --- consumer (upload thread) -----------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        """The compressed bytes in order, as produced; raises ``StreamAborted`` when the build
        failed, so that the upload never completes with a truncated blob."""
        while True:
            item = self._queue.get()
            if item is _END:
                if self._error is not None or self._layer is None:
                    raise StreamAborted("the layer build failed")
                return
            assert isinstance(item, bytes)
            self.sent += len(item)
            yield item

    def digest(self) -> tuple[str, int]:
        """Digest and size of the complete blob (waits for the build)."""
        layer = self.finish()
        return layer.digest, layer.size

    def abandon(self) -> None:
        """No more reading: the build finishes into the temp file alone."""
        self._abandoned.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def finish(self) -> Layer:
        """The built layer (its temp file complete); raises the build's own error."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._layer is not None
        return self._layer

    def discard(self) -> None:
        """Stops the build and removes its temp file (after an error elsewhere)."""
        self._cancelled.set()
        self.abandon()
        self._thread.join()
        if self._layer is not None and self._layer.path is not None:
            self._layer.path.unlink(missing_ok=True)
