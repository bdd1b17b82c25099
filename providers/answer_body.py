"""An upstream's complete answer body, held as the pieces it arrived in.

A 2 MB image answer comes off the socket in a dozen or so pieces. Joining them into one
`bytes` copies every byte into fresh memory (and the kernel faults that memory in),
which cost more than the rest of relaying it. So the pieces are kept: they go to the
client one ASGI message each, billing reads the few bytes it needs from the ends, and
only the uses that need one contiguous buffer (parsing the whole JSON) join them, once.
"""

from __future__ import annotations

from collections.abc import Iterable


class AnswerBody:
    """The bytes of one answer, as a sequence of non-empty chunks."""

    __slots__ = ("_chunks", "_size")

    def __init__(self, chunks: Iterable[bytes] = ()) -> None:
        self._chunks = tuple(filter(None, chunks))
        self._size = sum(map(len, self._chunks))

    @classmethod
    def of(cls, data: bytes) -> AnswerBody:
        """A body that is already whole."""
        return cls((data,))

    @property
    def chunks(self) -> tuple[bytes, ...]:
        return self._chunks

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        """The body in one buffer: joined the first time only (a 2 MB copy), then kept so."""
        if len(self._chunks) > 1:
            self._chunks = (b"".join(self._chunks),)
        return self._chunks[0] if self._chunks else b""

    def head(self, size: int) -> bytes:
        """The first `size` bytes (fewer if the body is shorter), copying only the chunks they span."""
        if len(self._chunks) == 1:
            return self._chunks[0][:size]
        taken, have = [], 0
        for chunk in self._chunks:
            if have >= size:
                break
            taken.append(chunk[: size - have])
            have += len(taken[-1])
        return taken[0] if len(taken) == 1 else b"".join(taken)

    def tail(self, size: int) -> bytes:
        """The last `size` bytes (fewer if the body is shorter), copying only the chunks they span."""
        if len(self._chunks) == 1:
            return self._chunks[0][-size:] if size > 0 else b""
        taken: list[bytes] = []
        have = 0
        for chunk in reversed(self._chunks):
            if have >= size:
                break
            taken.append(chunk[have - size :])  # the last size - have bytes, or the whole chunk
            have += len(taken[-1])
        taken.reverse()
        return taken[0] if len(taken) == 1 else b"".join(taken)

    def __repr__(self) -> str:
        return f"AnswerBody({self._size} bytes in {len(self._chunks)} chunks)"


EMPTY = AnswerBody()
