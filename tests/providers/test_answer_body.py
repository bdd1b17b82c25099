"""AnswerBody: an answer held as the chunks it arrived in reads the same as the whole,
at its ends and joined, wherever the chunks were cut."""

from __future__ import annotations

import itertools

import pytest

from providers.answer_body import EMPTY, AnswerBody

WHOLE = bytes(range(256)) * 3


def cut(data: bytes, *at: int) -> AnswerBody:
    edges = [0, *at, len(data)]
    return AnswerBody(data[start:end] for start, end in itertools.pairwise(edges))


@pytest.mark.parametrize("at", [(), (1,), (100,), (767,), (1, 2, 3), (10, 10, 10, 500), (255, 256, 257, 700)])
def test_the_chunks_read_as_the_whole(at):
    body = cut(WHOLE, *at)
    assert len(body) == len(WHOLE)
    assert b"".join(body.chunks) == WHOLE
    for size in (0, 1, 2, 99, 100, 101, 256, 767, 768, 10_000):
        assert body.head(size) == WHOLE[:size]
        assert body.tail(size) == WHOLE[len(WHOLE) - size :]
    assert bytes(body) == WHOLE


def test_joining_happens_once_and_keeps_the_value():
    body = cut(WHOLE, 5, 600)
    assert len(body.chunks) == 3
    joined = bytes(body)
    assert bytes(body) is joined and body.chunks == (joined,) and len(body) == len(WHOLE)


def test_a_whole_body_is_one_chunk_and_never_copied():
    body = AnswerBody.of(WHOLE)
    assert body.chunks == (WHOLE,) and bytes(body) is WHOLE
    assert body.head(len(WHOLE)) is WHOLE and body.tail(len(WHOLE) + 5) is WHOLE


def test_empty_chunks_are_dropped_and_nothing_is_empty():
    assert AnswerBody([b"", b"ab", b"", b"c", b""]).chunks == (b"ab", b"c")
    for empty in (EMPTY, AnswerBody(), AnswerBody.of(b""), AnswerBody([b"", b""])):
        assert (len(empty), bytes(empty), empty.chunks, empty.head(4), empty.tail(4)) == (0, b"", (), b"", b"")
