"""Length-prefixed strict JSON frames: the only format that crosses a process
boundary in the sandbox. Never pickle: a frame from a graded child is data
written by hostile code, and JSON can describe nothing but data.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")


class FrameError(Exception):
    """A frame was malformed, truncated or too large."""


def encode(obj: Any) -> bytes:
    data = json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def decode(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"not strict JSON: {exc.__class__.__name__}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_frame(fd: int, obj: Any) -> None:
    write_all(fd, encode(obj))


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise FrameError("the peer closed the channel mid-frame" if chunks else "the peer closed the channel")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int) -> Any:
    """Blocking read of one frame from a trusted peer, refusing frames over limit bytes."""
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    if size > limit:
        raise FrameError(f"frame of {size} bytes exceeds the {limit} byte limit")
    return decode(_read_exact(fd, size))


class FrameBuffer:
    """Collects the bytes of one frame from a non-blocking pipe, with a byte cap.

    feed() returns False once the peer has sent more than the cap allows; bytes
    after a complete frame are kept, so that a second, forged frame is seen.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflow = False

    def expected_size(self) -> int | None:
        if len(self.data) < HEADER.size:
            return None
        return HEADER.size + HEADER.unpack_from(self.data)[0]

    def feed(self, chunk: bytes) -> bool:
        self.data += chunk
        if len(self.data) > self.limit:
            self.overflow = True
        return not self.overflow

    @property
    def complete(self) -> bool:
        expected = self.expected_size()
        return expected is not None and len(self.data) >= expected and not self.overflow

    def payload(self) -> bytes:
        """The frame's JSON bytes; FrameError unless exactly one whole frame arrived."""
        if self.overflow:
            raise FrameError(f"more than {self.limit} bytes on the result channel")
        expected = self.expected_size()
        if expected is None or len(self.data) < expected:
            raise FrameError("the result frame is missing or truncated")
        if len(self.data) > expected:
            raise FrameError("unexpected bytes after the result frame")
        return bytes(self.data[HEADER.size:expected])
