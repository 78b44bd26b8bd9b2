"""The trusted comparer never raises, whatever a hostile child sends.

compare() and describe() run in the grader's own process on observations the
learner's code chose. Every observation the schema accepts must get a verdict
and a message: an exception there leaves a submission `running` until the sweep
and ends `manage.py grade` in a traceback. Hypothesis generates observations
that pass grader.sandbox.schema.validate_observation (asserted in each test, so
the strategy cannot drift from the schema unnoticed) and checks that
comparisons of any pair, under any check, stay total.
"""
from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from grader.sandbox import Check
from grader.sandbox.compare import compare, describe
from grader.sandbox.schema import validate_observation

from .test_compare import number, scalar, tensor

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_SEQUENCE_DEPTH = 3  # schema: sequences nest at depths 0, 1 and 2; depth 3 holds only leaves
SMALL_NUMEL = 8  # larger tensors are observed without values (too large), as are some small ones

# -- numbers ---------------------------------------------------------------------------------------
EDGE_FLOATS = [1.7e308, -1.7e308, sys.float_info.max, sys.float_info.min, 1e-320, -1e-320, 5e-324]  # huge, tiny, subnormal
EDGE_INTS = [2**63 - 1, -2**63, 2**64, 10**400, -(10**400), int(sys.float_info.max) + 1]  # int64, beyond float
NONFINITE = ["nan", "inf", "-inf"]  # how the wire format carries non-finite floats


def finite_floats() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, *EDGE_FLOATS]))


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, 1, -1, *EDGE_INTS]))


def numbers() -> st.SearchStrategy[Any]:
    """Anything a float observation or a tensor element may hold: the schema takes ints there too."""
    return st.one_of(finite_floats(), ints(), st.sampled_from(NONFINITE))


def element() -> st.SearchStrategy[Any]:
    return st.one_of(numbers(), st.booleans())


# -- observations ---------------------------------------------------------------------------------
DTYPES = ["float16", "bfloat16", "float32", "float64", "int64", "int32", "uint8", "bool", "complex64"]
OWNER = st.fixed_dictionaries({"requires_grad": st.booleans(), "is_leaf": st.booleans(),
                               "retains_grad": st.booleans()})


def with_owner(obs: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Any observation may carry the owner of a `.grad` target (what x was, for x.grad)."""
    return st.tuples(obs, st.none() | OWNER).map(
        lambda pair: pair[0] if pair[1] is None else {**pair[0], "owner": pair[1]})


def shapes() -> st.SearchStrategy[list[int]]:
    return st.one_of(
        st.just([]),                                                       # a 0-dim scalar
        st.lists(st.integers(0, 3), min_size=1, max_size=3),              # small, empty ([0]) included
        st.lists(st.integers(0, 2**40), min_size=1, max_size=16),         # too large to carry values
    )


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(shapes())
    numel = math.prod(shape)
    dtype = draw(st.sampled_from(DTYPES) | st.text(max_size=40))
    carries_values = numel <= SMALL_NUMEL and dtype != "complex64" and draw(st.booleans())
    values = draw(st.lists(element(), min_size=numel, max_size=numel)) if carries_values else None
    return {"kind": "tensor", "dtype": dtype, "shape": shape, "numel": numel, "requires_grad": draw(st.booleans()),
            "is_leaf": draw(st.booleans()), "grad_fn": draw(st.none() | st.text(max_size=80)), "values": values}


def leaves() -> list[st.SearchStrategy[dict[str, Any]]]:
    """One strategy per non-sequence observation kind: a new kind in the schema gets one more entry here."""
    return [
        st.just({"kind": "none"}),
        st.builds(lambda v: {"kind": "bool", "value": v}, st.booleans()),
        st.builds(lambda v: {"kind": "int", "value": v}, ints()),
        st.builds(lambda v: {"kind": "float", "value": v}, numbers()),
        tensors(),
        st.builds(lambda t, r: {"kind": "other", "type": t, "repr": r}, st.text(max_size=80), st.text(max_size=200)),
        st.builds(lambda b: {"kind": "oversized", "bytes": b}, st.integers(0, 2**40)),
        tensors().map(lambda t: {**t, "values": None, "subclass": "MyTensor"}),
        st.builds(lambda e: {"kind": "missing", "error": e},
                  st.text(max_size=400) | st.from_regex(r"NameError: name '[a-z_]{1,8}' is not defined", fullmatch=True)),
    ]


def sequences(items: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        members = draw(st.lists(items, max_size=4))
        length = len(members) + draw(st.sampled_from([0, 0, 1, 100, 10**400]))  # truncated sequences are longer
        return {"kind": "sequence", "type": draw(st.sampled_from(["list", "tuple"])), "length": length,
                "items": members}
    return build()


def observations(depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Observations the schema accepts at this nesting depth (0: a target's own observation)."""
    kinds = leaves()
    if depth < MAX_SEQUENCE_DEPTH:
        kinds.append(sequences(st.deferred(lambda: observations(depth + 1))))
    return with_owner(st.one_of(kinds))


# -- checks --------------------------------------------------------------------------------------
TARGETS = ["x.grad", "y.requires_grad", "h.is_leaf", "torch.is_grad_enabled()", "acc", "model[0].weight.grad", "g",
           " x.grad "]
TOLERANCES = st.sampled_from([0.0, 1e-8, 1e-5, 0.5, 1.0, 1e9, 1e300, math.inf]) | st.floats()


def checks() -> st.SearchStrategy[Check]:
    return st.builds(
        Check, target=st.sampled_from(TARGETS) | st.text(max_size=30), compare=st.sampled_from(["value", "none", "bool"]),
        name=st.just("") | st.text(max_size=30), rtol=TOLERANCES, atol=TOLERANCES, strict_dtype=st.booleans(),
        hidden=st.booleans(), feedback=st.just("") | st.text(max_size=60),
    )


def assert_verdict(result: Any) -> None:
    passed, message = result
    assert type(passed) is bool and type(message) is str
    assert (message == "") is passed, f"a failed check says why, a passed one says nothing: {result!r}"


# -- properties ----------------------------------------------------------------------------------
@FUZZ
@given(obs=observations())
def test_every_generated_observation_is_one_the_schema_accepts(obs: dict[str, Any]) -> None:
    validate_observation(obs)


@FUZZ
@given(check=checks(), expected=observations(), actual=observations(), reveal=st.booleans())
def test_compare_never_raises(check: Check, expected: dict[str, Any], actual: dict[str, Any], reveal: bool) -> None:
    validate_observation(expected)
    validate_observation(actual)
    assert_verdict(compare(check, expected, actual, reveal))


@FUZZ
@given(check=checks(), expected=st.one_of(leaves()), actual=st.one_of(leaves()), reveal=st.booleans())
@example(check=Check("g"), expected=scalar(0.9182168245315552), actual=number(1.7e308), reveal=True)
@example(check=Check("g"), expected=number(7.0), actual=number(1e-320), reveal=True)
def test_compare_never_raises_on_two_numbers(check: Check, expected: dict[str, Any], actual: dict[str, Any],
                                             reveal: bool) -> None:
    """Leaves against leaves: where the arithmetic (closeness, ratio hints) happens most often."""
    validate_observation(expected)
    validate_observation(actual)
    assert_verdict(compare(check, expected, actual, reveal))


@FUZZ
@given(check=checks(), obs=observations(), reveal=st.booleans())
def test_compare_never_raises_on_an_observation_and_itself(check: Check, obs: dict[str, Any], reveal: bool) -> None:
    """Random pairs rarely agree in kind and shape; twins reach the deeper paths (same shape, item by item)."""
    validate_observation(obs)
    assert_verdict(compare(check, obs, obs, reveal))


@FUZZ
@given(obs=observations())
def test_describe_never_raises(obs: dict[str, Any]) -> None:
    validate_observation(obs)
    text = describe(obs)
    assert type(text) is str and text


@FUZZ
@given(obs=st.one_of(tensors(), st.builds(lambda v: {"kind": "int", "value": v}, ints()),
                     st.builds(lambda v: {"kind": "float", "value": v}, numbers())))
def test_a_number_without_nan_matches_itself(obs: dict[str, Any]) -> None:
    values = obs.get("values", [obs.get("value")])
    if values is None or "nan" in values:
        return
    assert compare(Check("v"), obs, obs, True) == (True, "")


# -- the reported crashes -----------------------------------------------------------------------
def test_a_huge_float_against_the_autograd_grad_reference_gets_a_verdict() -> None:
    # 1.7e308 / 0.918 overflows to inf; the ratio hint used to round(inf): OverflowError.
    assert compare(Check("g"), scalar(0.9182168245315552), number(1.7e308), True) == (
        False, "g is 1.7e+308, expected 0.918217")
    assert compare(Check("g"), scalar(0.9182168245315552), number(1.7e308), False) == (
        False, "g is 1.7e+308, which is not the expected value")


def test_a_subnormal_against_a_nonzero_reference_gets_a_verdict() -> None:
    # zero-grad: 1e-320 / 7.0 is subnormal, and its inverse overflowed to inf before round().
    assert compare(Check("g"), number(7.0), number(1e-320), True) == (False, "g is 9.99989e-321, expected 7.0")


def test_a_subnormal_against_a_zero_reference_is_within_atol() -> None:
    assert compare(Check("x.grad"), scalar(0.0), scalar(1e-320), True) == (True, "")
    assert compare(Check("x.grad", atol=0.0), scalar(0.0), scalar(1e-320), True) == (
        False, "x.grad is 9.99989e-321, expected 0.0")


def test_a_tiny_value_next_to_a_zero_gets_no_ratio_hint() -> None:
    # ratios [0.0, 1e-10] agree, so 1/0.0 used to be taken: ZeroDivisionError.
    assert compare(Check("x.grad"), tensor([1.0, 1.0]), tensor([0.0, 1e-10]), True) == (
        False, "x.grad is tensor([0.0, 1e-10]), expected tensor([1.0, 1.0])")


@pytest.mark.parametrize("actual, expected, ok, message", [
    pytest.param(10**400, 7.0, False, "g is 1e+400, expected 7.0", id="float(10**400) overflowed"),
    pytest.param(10**400, 10**400, True, "", id="exact, not inf == inf"),
    pytest.param(10**400, 10**400 + 1, True, "", id="within rtol"),
    pytest.param(10**400, 2 * 10**400, False, "g is 1e+400, expected 2e+400", id="twice"),
    pytest.param(10**400, "inf", False, "g is 1e+400, expected inf", id="a finite int is not infinity"),
    pytest.param(10**5000, 1, False, "g is 1e+5000, expected 1", id="str() refuses over 4300 digits"),
    pytest.param(2**63 - 1, 2**63 - 1, True, "", id="int64 max"),
    pytest.param(-2**63, 2**63 - 1, False,
                 "g is -9223372036854775808, expected 9223372036854775807 — the sign is flipped", id="int64 min"),
])
def test_huge_ints_are_compared_and_shown_without_overflow(actual: int, expected: Any, ok: bool, message: str) -> None:
    kind = "int" if type(expected) is int else "float"
    assert compare(Check("g"), {"kind": kind, "value": expected}, number(actual), True) == (ok, message)


def test_huge_shapes_and_lengths_are_shown() -> None:
    big = {"kind": "tensor", "dtype": "float32", "shape": [10**5000], "numel": 10**5000, "requires_grad": False,
           "is_leaf": True, "grad_fn": None, "values": None}
    validate_observation(big)
    assert describe(big) == "a tensor of shape [1e+5000]"
    seq = {"kind": "sequence", "type": "list", "length": 10**5000, "items": []}
    assert describe(seq) == "a list of 1e+5000 items"


def test_a_sequence_with_fewer_items_than_its_twin_does_not_pass() -> None:
    # Same length, but a forged observation that leaves out the items has nothing to compare.
    expected = {"kind": "sequence", "type": "list", "length": 2, "items": [scalar(1.0), scalar(2.0)]}
    forged = {"kind": "sequence", "type": "list", "length": 2, "items": []}
    assert compare(Check("gs"), expected, forged, True) == (
        False, "gs is a list of 2 items, but 0 of its items were observed, not 2")


def test_a_bool_check_on_a_reference_that_is_not_a_bool_compares_values() -> None:
    assert compare(Check("flag", "bool"), {"kind": "none"}, number(True), True) == (False, "flag is True, expected None")
