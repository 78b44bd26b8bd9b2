"""Unit tests of the frame format: strict JSON framing (protocol.py) and the
validation of what a graded child sends back (schema.py). A child's frame is
written by hostile code, so everything unexpected must be refused."""
from __future__ import annotations

import base64
import copy
import os
from collections.abc import Iterator
from typing import Any

import pytest

from grader.sandbox import protocol, schema
from grader.sandbox.client import _outcome
from grader.sandbox.protocol import FrameBuffer, FrameError

TENSOR = {"kind": "tensor", "dtype": "float32", "shape": [2], "numel": 2, "requires_grad": False, "is_leaf": True,
          "grad_fn": None, "values": [7.0, 9.0]}
GRAD = {**TENSOR, "owner": {"requires_grad": True, "is_leaf": True, "retains_grad": False}}
ERROR = {"type": "ValueError", "message": "bad", "traceback": "Traceback\nValueError: bad", "line": 2,
         "phase": "run"}


LINEAGE = {"writer": "engine", "changed": False, "sources": ["x"], "complete": True, "differentiated": ["y"]}
GRAPH = {"nodes": [["MulBackward0", "op", "MulBackward0"], ["AccumulateGrad", "leaf", "x"]], "edges": [[0, 1]],
         "truncated": False}


def done(*observations: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "phase": "done", "observations": list(observations), "cpu_ms": 1.5, "exec_ms": 2}


# -- well-formed frames ---------------------------------------------------------------------
@pytest.mark.parametrize("frame, n", [
    (done(GRAD, {"kind": "none"}, {"kind": "bool", "value": True}), 3),
    (done({"kind": "int", "value": 3}, {"kind": "float", "value": 0.5}, {"kind": "float", "value": "-inf"}), 3),
    (done({**TENSOR, "values": ["nan", 1.0]}, {**TENSOR, "values": None}, {**TENSOR, "dtype": "bool",
                                                                           "values": [True, False]}), 3),
    (done({"kind": "sequence", "type": "tuple", "length": 3, "items": [TENSOR]},
          {"kind": "other", "type": "str", "repr": "'hi'"}, {"kind": "missing", "error": "NameError: g"}), 3),
    (done(), 0),
    (done({**GRAD, "lineage": LINEAGE}, {**TENSOR, "same": True}, {**TENSOR, "graph": GRAPH}), 3),
    ({"v": 1, "phase": "code_error", "error": {**ERROR, "errno": 13}}, 2),
    ({"v": 1, "phase": "syntax_error", "error": {**ERROR, "phase": "compile", "line": None}}, 2),
    ({"v": 1, "phase": "setup_error", "error": ERROR}, 2),
    ({"v": 1, "phase": "internal", "detail": "RuntimeError('x')"}, 2),
])
def test_well_formed_frames_are_accepted_unchanged(frame: dict[str, Any], n: int) -> None:
    original = copy.deepcopy(frame)
    assert schema.validate_frame(frame, n) is frame
    assert frame == original


# -- malformed and hostile frames -------------------------------------------------------------
def with_obs(**changes: Any) -> dict[str, Any]:
    obs = {**TENSOR, **changes}
    return done({k: v for k, v in obs.items() if v is not ...})


BAD_FRAMES: list[tuple[str, Any, int]] = [
    ("not-an-object", ["v", 1], 0),
    ("string", "done", 0),
    ("no-version", {"phase": "done", "observations": []}, 0),
    ("version-2", {"v": 2, "phase": "done", "observations": []}, 0),
    ("version-true", {"v": True, "phase": "done", "observations": []}, 0),
    ("version-float", {"v": 1.0, "phase": "done", "observations": []}, 0),
    ("unknown-phase", {"v": 1, "phase": "passed", "observations": []}, 0),
    ("probe-phase", {"v": 1, "phase": "probe", "blocked": {}}, 0),
    ("claims-passed", {**done(TENSOR), "status": "passed", "score": 1.0}, 1),
    ("extra-top-level-key", {**done(TENSOR), "verdict": "passed"}, 1),
    ("observations-not-a-list", {"v": 1, "phase": "done", "observations": {"0": TENSOR}}, 1),
    ("too-few-observations", done(TENSOR), 2),
    ("too-many-observations", done(TENSOR, TENSOR), 1),
    ("no-observations", {"v": 1, "phase": "done"}, 1),
    ("cpu-ms-negative", {**done(), "cpu_ms": -1}, 0),
    ("cpu-ms-string", {**done(), "cpu_ms": "1"}, 0),
    ("unknown-kind", done({"kind": "verdict", "value": "passed"}), 1),
    ("observation-not-an-object", done(["tensor"]), 1),  # type: ignore[arg-type]  # malformed on purpose
    ("extra-observation-key", done({"kind": "none", "value": 7}), 1),
    ("bool-as-int", done({"kind": "bool", "value": 1}), 1),
    ("int-as-bool", done({"kind": "int", "value": True}), 1),
    ("int-as-float", done({"kind": "int", "value": 1.0}), 1),
    ("float-as-string", done({"kind": "float", "value": "7"}), 1),
    ("float-nan-number", done({"kind": "float", "value": float("nan")}), 1),
    ("float-inf-number", done({"kind": "float", "value": float("inf")}), 1),
    ("numel-mismatch", with_obs(numel=3), 1),
    ("shape-mismatch", with_obs(shape=[3]), 1),
    ("negative-shape", with_obs(shape=[-2], numel=2), 1),
    ("float-shape", with_obs(shape=[2.0]), 1),
    ("shape-not-a-list", with_obs(shape="2"), 1),
    ("seventeen-dimensions", with_obs(shape=[1] * 17, numel=1, values=[1.0]), 1),
    ("values-longer-than-numel", with_obs(values=[7.0, 9.0, 11.0]), 1),
    ("values-shorter-than-numel", with_obs(values=[7.0]), 1),
    ("values-with-strings", with_obs(values=["7", 9.0]), 1),
    ("values-with-nan-number", with_obs(values=[float("nan"), 9.0]), 1),
    ("values-nested", with_obs(values=[[7.0], [9.0]]), 1),
    ("dtype-too-long", with_obs(dtype="f" * 41), 1),
    ("dtype-not-a-string", with_obs(dtype=32), 1),
    ("requires-grad-not-bool", with_obs(requires_grad=1), 1),
    ("is-leaf-missing", with_obs(is_leaf=...), 1),
    ("grad-fn-too-long", with_obs(grad_fn="B" * 81), 1),
    ("tensor-extra-key", with_obs(passed=True), 1),
    ("owner-extra-key", with_obs(owner={"requires_grad": True, "is_leaf": True, "retains_grad": False, "x": 1}), 1),
    ("owner-not-bool", with_obs(owner={"requires_grad": 1, "is_leaf": True, "retains_grad": False}), 1),
    ("sequence-bad-type", done({"kind": "sequence", "type": "set", "length": 0, "items": []}), 1),
    ("sequence-too-many-items",
     done({"kind": "sequence", "type": "list", "length": 65, "items": [{"kind": "none"}] * 65}), 1),
    ("sequence-length-below-items",
     done({"kind": "sequence", "type": "list", "length": 0, "items": [{"kind": "none"}]}), 1),
    ("sequence-bad-item", done({"kind": "sequence", "type": "list", "length": 1, "items": [{"kind": "?"}]}), 1),
    ("other-repr-too-long", done({"kind": "other", "type": "str", "repr": "x" * 201}), 1),
    ("missing-error-too-long", done({"kind": "missing", "error": "e" * 401}), 1),
    ("error-not-an-object", {"v": 1, "phase": "code_error", "error": "boom"}, 1),
    ("error-extra-key", {"v": 1, "phase": "code_error", "error": {**ERROR, "status": "passed"}}, 1),
    ("error-traceback-too-long", {"v": 1, "phase": "code_error", "error": {**ERROR, "traceback": "t" * 8001}}, 1),
    ("error-line-not-int", {"v": 1, "phase": "code_error", "error": {**ERROR, "line": "2"}}, 1),
    ("error-bad-phase", {"v": 1, "phase": "code_error", "error": {**ERROR, "phase": "done"}}, 1),
    ("error-errno-bool", {"v": 1, "phase": "code_error", "error": {**ERROR, "errno": True}}, 1),
    ("error-with-observations", {"v": 1, "phase": "code_error", "error": ERROR, "observations": [TENSOR]}, 1),
    ("internal-detail-too-long", {"v": 1, "phase": "internal", "detail": "d" * 601}, 1),
    ("lineage-unknown-writer", done({**GRAD, "lineage": {**LINEAGE, "writer": "teacher"}}), 1),
    ("lineage-changed-not-bool", done({**GRAD, "lineage": {**LINEAGE, "changed": 0}}), 1),
    ("lineage-extra-key", done({**GRAD, "lineage": {**LINEAGE, "verdict": "passed"}}), 1),
    ("lineage-sources-not-strings", done({**GRAD, "lineage": {**LINEAGE, "sources": [1]}}), 1),
    ("lineage-differentiated-not-a-list", done({**GRAD, "lineage": {**LINEAGE, "differentiated": "y"}}), 1),
    ("lineage-without-differentiated", done({**GRAD, "lineage": {k: v for k, v in LINEAGE.items()
                                                                  if k != "differentiated"}}), 1),
    ("same-not-bool", done({**TENSOR, "same": 1}), 1),
    ("graph-edge-out-of-range", done({**TENSOR, "graph": {**GRAPH, "edges": [[0, 2]]}}), 1),
    ("graph-node-bad-kind", done({**TENSOR, "graph": {**GRAPH, "nodes": [["X", "teacher", "X"]], "edges": []}}), 1),
    ("graph-too-many-nodes", done({**TENSOR, "graph": {**GRAPH, "nodes": [["X", "op", "X"]] * 201, "edges": []}}), 1),
    ("facts-inside-a-sequence", done({"kind": "sequence", "type": "list", "length": 1,
                                      "items": [{**TENSOR, "same": True}]}), 1),
]


@pytest.mark.parametrize("frame, n", [pytest.param(f, n, id=name) for name, f, n in BAD_FRAMES])
def test_malformed_frames_are_refused(frame: Any, n: int) -> None:
    with pytest.raises(FrameError):
        schema.validate_frame(frame, n)


def nested_sequence(depth: int) -> dict[str, Any]:
    obs: dict[str, Any] = {"kind": "none"}
    for _ in range(depth):
        obs = {"kind": "sequence", "type": "list", "length": 1, "items": [obs]}
    return obs


def test_nesting_is_capped() -> None:
    schema.validate_frame(done(nested_sequence(3)), 1)
    with pytest.raises(FrameError, match="bad sequence items"):
        schema.validate_frame(done(nested_sequence(4)), 1)
    with pytest.raises(FrameError):
        schema.validate_frame(done(nested_sequence(500)), 1)


# -- strict JSON ------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [
    b'{"v": NaN}', b'{"v": Infinity}', b'{"v": -Infinity}', b'[NaN]',
])
def test_nan_and_infinity_literals_are_not_json(payload: bytes) -> None:
    with pytest.raises(FrameError, match="not strict JSON"):
        protocol.decode(payload)


@pytest.mark.parametrize("payload", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
], ids=["lists", "objects"])
def test_huge_nesting_is_refused_not_crashing(payload: bytes) -> None:
    with pytest.raises(FrameError, match="not strict JSON"):
        protocol.decode(payload)


@pytest.mark.parametrize("payload", [b"\xff\xfe{}", b'{"v": 1', b"", b"{'v': 1}", b'{"v": 1} {"v": 1}'])
def test_broken_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(FrameError):
        protocol.decode(payload)


def test_encode_refuses_non_finite_floats() -> None:
    with pytest.raises(ValueError):
        protocol.encode({"v": float("nan")})


def test_encode_decode_round_trip() -> None:
    frame = done(GRAD, {"kind": "float", "value": "nan"})
    data = protocol.encode(frame)
    assert protocol.HEADER.unpack(data[:4])[0] == len(data) - 4
    assert protocol.decode(data[4:]) == frame


# -- FrameBuffer --------------------------------------------------------------------------------
FRAME = protocol.encode(done(TENSOR))


def test_buffer_returns_one_whole_frame() -> None:
    buffer = FrameBuffer(1 << 16)
    assert not buffer.complete
    for i in range(len(FRAME)):  # byte by byte, as a pipe may deliver it
        assert buffer.feed(FRAME[i:i + 1])
        assert buffer.complete == (i == len(FRAME) - 1)
    assert protocol.decode(buffer.payload()) == done(TENSOR)


@pytest.mark.parametrize("trailer", [b"\x00", FRAME, b" "], ids=["one-byte", "second-frame", "space"])
def test_buffer_detects_trailing_bytes(trailer: bytes) -> None:
    buffer = FrameBuffer(1 << 16)
    buffer.feed(FRAME + trailer)
    assert buffer.complete  # the zygote stops waiting, but the payload is refused
    with pytest.raises(FrameError, match="unexpected bytes after the result frame"):
        buffer.payload()


@pytest.mark.parametrize("data", [b"", b"\x00\x00", FRAME[:-1], protocol.HEADER.pack(10) + b"{}"],
                         ids=["empty", "half-header", "one-byte-short", "header-claims-more"])
def test_buffer_detects_truncation(data: bytes) -> None:
    buffer = FrameBuffer(1 << 16)
    buffer.feed(data)
    assert not buffer.complete
    with pytest.raises(FrameError, match="missing or truncated"):
        buffer.payload()


def test_buffer_detects_overflow() -> None:
    buffer = FrameBuffer(64)
    assert buffer.feed(b"x" * 64)
    assert not buffer.feed(b"x")
    assert buffer.overflow and not buffer.complete
    with pytest.raises(FrameError, match="more than 64 bytes"):
        buffer.payload()


def test_buffer_overflow_even_with_a_complete_frame_first() -> None:
    buffer = FrameBuffer(len(FRAME) + 10)
    assert buffer.feed(FRAME)
    assert not buffer.feed(b"y" * 11)
    assert not buffer.complete
    with pytest.raises(FrameError, match="more than"):
        buffer.payload()


# -- frames over a real pipe -----------------------------------------------------------------------
@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_read_frame_round_trips_over_a_pipe(pipe: tuple[int, int]) -> None:
    r, w = pipe
    protocol.write_frame(w, done(TENSOR))
    assert protocol.read_frame(r, 1 << 16) == done(TENSOR)


def test_read_frame_refuses_a_frame_over_the_limit_before_reading_it(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, protocol.HEADER.pack(1 << 30))
    with pytest.raises(FrameError, match="exceeds"):
        protocol.read_frame(r, 1 << 20)


@pytest.mark.parametrize("data, match", [(b"", "closed the channel"), (FRAME[:-3], "mid-frame")])
def test_read_frame_refuses_a_closed_channel(pipe: tuple[int, int], data: bytes, match: str) -> None:
    r, w = pipe
    os.write(w, data)
    os.close(w)
    with pytest.raises(FrameError, match=match):
        protocol.read_frame(r, 1 << 20)


# -- the client's reading of a reply ------------------------------------------------------------
def reply_with(frame_bytes: bytes | None) -> dict[str, Any]:
    return {"ok": True, "frame": None if frame_bytes is None else base64.b64encode(frame_bytes).decode(),
            "killed_for": None, "exit_code": 0, "exit_signal": None, "cpu_seconds": 0.1, "output": "",
            "output_bytes": 0, "wall_ms": 1.0, "layers": {}}




def test_client_accepts_a_frame_carrying_the_jobs_token() -> None:
    run = _outcome(reply_with(protocol.encode({**done(TENSOR), "token": "t0k3n"})), 1, "t0k3n")
    assert run.frame_error is None
    assert run.frame == done(TENSOR)  # the token is checked and removed


@pytest.mark.parametrize("frame", [
    done(TENSOR),                                   # forged by code that never saw the token
    {**done(TENSOR), "token": "guessed"},
    {**done(TENSOR), "token": None},
    {**done(TENSOR), "token": ["t0k3n"]},
], ids=["no-token", "wrong-token", "null-token", "list-token"])
def test_client_refuses_a_frame_without_the_jobs_token(frame: dict[str, Any]) -> None:
    run = _outcome(reply_with(protocol.encode(frame)), 1, "t0k3n")
    assert run.frame is None
    assert run.frame_error is not None and "token" in run.frame_error


def test_client_refuses_two_frames_and_a_bad_schema() -> None:
    good = protocol.encode({**done(TENSOR), "token": "t"})
    run = _outcome(reply_with(good + good), 1, "t")
    assert run.frame is None and run.frame_error is not None and "unexpected bytes" in run.frame_error
    run = _outcome(reply_with(protocol.encode({**done(TENSOR), "token": "t"})), 2, "t")
    assert run.frame is None and run.frame_error == "there must be one observation per target"
