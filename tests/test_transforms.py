"""The built-in transforms: every example on every transform runs, plus the load-time checks.

Examples live on the ``@transform`` decorator (mappings/transforms/), so this file needs no
edit when a transform is added: it is parametrized over the registry.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.docs import render_transforms_md
from mappings.errors import TransformArgError, TransformError
from mappings.registry import (
    IDENTITY,
    BoundTransform,
    Context,
    Ex,
    TransformDef,
    all_transforms,
    get_transform,
    transform,
)
from tests.strategies import VALID_INPUTS, FakeResolver, pipeline_strategy

TRANSFORMS = all_transforms()
EXAMPLES = [pytest.param(t, ex, id=f"{name}-{i}") for name, t in TRANSFORMS.items() for i, ex in enumerate(t.examples)]
REVERSIBLE = [p for p in EXAMPLES if p.values[0].inverse not in (None, IDENTITY) and not p.values[1].fails]
NORMALISING = [p for p in EXAMPLES if p.values[0].inverse is IDENTITY and not p.values[1].fails]
ROOT = Path(__file__).resolve().parent.parent


def context(record: Any = None) -> Context:
    return Context(record=record, system="test", resolver=FakeResolver())


def forward(bound: BoundTransform, value: Any, record: Any = None) -> Any:
    if bound.definition.context:
        return bound.step(value, context(record))
    return bound.step(value)


def backward(bound: BoundTransform, value: Any, record: Any = None) -> Any:
    inverse = bound.inverse_step()
    assert inverse is not None and inverse is not IDENTITY
    assert callable(inverse)
    if bound.definition.context:
        return inverse(value, context(record))
    return inverse(value)


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same type all the way down (Decimal("1.50") is not Decimal("1.5"))."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# --- the examples -------------------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "ex"), EXAMPLES)
def test_example(definition: TransformDef, ex: Ex):
    bound = definition.bind(ex.args, ex.kwargs)
    if ex.fails:
        with pytest.raises(TransformError):
            forward(bound, ex.input, ex.record)
        return
    out = forward(bound, ex.input, ex.record)
    assert same(out, ex.output), f"{bound.label}({ex.input!r}) gave {out!r}, expected {ex.output!r}"


@pytest.mark.parametrize(("definition", "ex"), REVERSIBLE)
def test_example_round_trip(definition: TransformDef, ex: Ex):
    """For exact inverses: forward(inverse(output)) == output, so a write never reads back as a change."""
    bound = definition.bind(ex.args, ex.kwargs)
    out = forward(bound, ex.input, ex.record)
    if out is None:
        return  # null is never passed to a step on the way out
    try:
        native = backward(bound, out, ex.record)
    except TransformArgError:
        return  # params that cannot be reversed are refused at load time (tested below)
    again = forward(bound, native, ex.record)
    assert same(again, out), f"{bound.label}: {out!r} -> {native!r} -> {again!r}"


@pytest.mark.parametrize(("definition", "ex"), NORMALISING)
def test_normalisers_are_idempotent(definition: TransformDef, ex: Ex):
    """A normaliser's output is valid native input that maps to itself (that is what IDENTITY claims)."""
    bound = definition.bind(ex.args, ex.kwargs)
    out = forward(bound, ex.input, ex.record)
    if out is None:
        return
    assert same(forward(bound, out, ex.record), out)


# --- what every transform must have -------------------------------------------------------------


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_is_documented_with_examples(name: str):
    definition = TRANSFORMS[name]
    assert definition.doc.strip(), "needs a docstring"
    assert len(definition.doc) > 40, "the docstring should say what and why"
    assert any(not ex.fails for ex in definition.examples), "needs an example that passes"
    if definition.inverse is not None and not isinstance(definition.inverse, type(IDENTITY)):
        assert definition.inverse.__doc__, "an inverse needs a docstring (shown in the docs)"


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_has_a_valid_input_strategy(name: str):
    assert name in VALID_INPUTS, f"tests/strategies.py: add a VALID_INPUTS entry for {name!r}"


def test_the_expected_transforms_are_registered():
    expected = {
        "strip", "lower", "upper", "title", "email", "phone_e164", "date", "datetime", "decimal", "money",
        "int", "country_iso2", "map", "default", "template", "split_name", "join", "split", "bool",
        "truncate", "regex_replace", "lookup", "coalesce", "str", "empty_to_none", "first", "gid",
    }  # fmt: skip
    assert expected <= set(TRANSFORMS)


def test_registering_a_duplicate_name_fails():
    with pytest.raises(ValueError, match="registered twice"):

        @transform(examples=[Ex("a", "a")])
        def strip(value: str) -> str:
            """Shadow the built-in."""
            return value

    assert TRANSFORMS["strip"].func is get_transform("strip").func


def test_a_transform_without_docstring_or_examples_is_refused():
    with pytest.raises(ValueError, match="docstring"):
        transform(examples=[Ex(1, 1)])(lambda value: value)
    with pytest.raises(ValueError, match="example"):

        @transform()
        def no_examples_here(value: Any) -> Any:
            """Doc."""
            return value


# --- load-time parameter checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "message"),
    [
        ("truncate", (0,), {}, "greater than or equal to 1"),
        ("truncate", ("x",), {}, "'n'"),
        ("truncate", (), {}, "missing"),
        ("regex_replace", ("(", ""), {}, "invalid regular expression"),
        ("phone_e164", (), {"region": "XX"}, "unknown phone region"),
        ("date", ("%Q",), {}, "bad date format"),
        ("date", ("dd.mm.yyyy",), {}, "no %-directives"),
        ("datetime", (), {"tz": "Europe/Warsow"}, "unknown time zone"),
        ("decimal", (), {"places": -1}, "places"),
        ("map", ({},), {}, "table"),
        ("map", ("PAID",), {}, "table"),
        ("split_name", ("middle",), {}, "part"),
        ("template", ("{first_name",), {}, "fmt"),
        ("template", ("{} {}",), {}, "need names"),
        ("lookup", ("cutsomer",), {}, "unknown entity"),
        ("gid", ("gid://shopify/Customer",), {}, "Shopify object type"),
        ("split", ("",), {}, "sep"),
        ("strip", ("extra",), {}, "too many"),
    ],
)
def test_bad_parameters_fail_at_load_time(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], message: str):
    with pytest.raises(TransformArgError, match=message):
        get_transform(name).bind(args, kwargs)


def test_a_map_whose_values_repeat_cannot_be_reversed():
    bound = get_transform("map").bind(({"SUBSCRIBED": True, "UNSUBSCRIBED": False, "NOT_SUBSCRIBED": False},), {})
    assert bound.step("SUBSCRIBED") is True  # the way in still works
    with pytest.raises(TransformArgError, match="value False comes from both 'UNSUBSCRIBED' and 'NOT_SUBSCRIBED'"):
        bound.inverse_step()


def test_map_reverses_strictly_even_with_a_default():
    bound = get_transform("map").bind(({"PAID": "paid", "PENDING": "pending"},), {"default": "pending"})
    out = bound.inverse_step()
    assert callable(out)
    assert out("paid") == "PAID"
    with pytest.raises(TransformError, match="not in the table"):
        out("refunded")


def test_map_lists_at_most_ten_known_keys():
    bound = get_transform("map").bind(({f"K{i}": i for i in range(25)},), {})
    with pytest.raises(TransformError) as caught:
        bound.step("nope")
    assert "K9" in str(caught.value) and "K10" not in str(caught.value) and "15 more" in str(caught.value)


def test_join_with_an_empty_separator_is_not_reversible():
    with pytest.raises(TransformArgError, match="empty separator"):
        get_transform("join").bind(("",), {}).inverse_step()


def test_lookup_offline_says_so():
    bound = get_transform("lookup").bind(("customer",), {})
    with pytest.raises(TransformError, match="not available offline"):
        bound.step("1001", Context(record={}, system="shopify", resolver=None))


def test_lookup_out_translates_back():
    bound = get_transform("lookup").bind(("customer",), {})
    out = bound.inverse_step()
    assert callable(out)
    assert out("00000000-0000-4000-8000-000000001001", context()) == "1001"


# --- behaviour worth pinning beyond the examples ------------------------------------------------


def test_datetime_way_out_formats():
    utc = get_transform("datetime").bind((), {})
    warsaw = get_transform("datetime").bind((), {"tz": "Europe/Warsaw"})
    formatted = get_transform("datetime").bind(("%d.%m.%Y %H:%M",), {"tz": "Europe/Warsaw"})
    stamp = datetime.fromisoformat("2026-11-20T09:15:00+00:00")
    assert backward(utc, stamp) == "2026-11-20T09:15:00Z"
    assert backward(warsaw, stamp) == "2026-11-20T10:15:00+01:00"
    assert backward(formatted, stamp) == "20.11.2026 10:15"
    assert backward(utc, datetime.fromisoformat("2026-11-20T09:15:00.5+00:00")) == "2026-11-20T09:15:00.500000Z"
    with pytest.raises(TransformError, match="no time zone"):
        backward(utc, datetime(2026, 11, 20, 9, 15))


def test_decimal_and_money_way_out_are_plain_text():
    assert backward(get_transform("decimal").bind((), {}), Decimal("1.5E+3")) == "1500"
    assert backward(get_transform("money").bind((), {}), Decimal("5")) == "5.00"
    assert backward(get_transform("money").bind((), {}), Decimal("-0.001")) == "0.00"


def test_date_way_out_uses_the_format():
    bound = get_transform("date").bind(("%d.%m.%Y",), {})
    assert backward(bound, date(1990, 5, 17)) == "17.05.1990"
    assert backward(get_transform("date").bind((), {}), date(1990, 5, 17)) == "1990-05-17"


def test_email_length_limit():
    local = "a" * 64
    assert get_transform("email").bind((), {}).step(f"{local}@example.pl") == f"{local}@example.pl"
    with pytest.raises(TransformError):
        get_transform("email").bind((), {}).step(f"{local}a@example.pl")
    with pytest.raises(TransformError):
        get_transform("email").bind((), {}).step("a@" + "b" * 250 + ".pl")


def test_template_reads_canonical_objects_on_the_way_out():
    from core.model import Address, Customer

    customer = Customer(first_name="Anna", addresses={"default": Address(city="Gdańsk")})
    bound = get_transform("template").bind(("{first_name} from {addresses.default.city}",), {})
    assert bound.step(None, context(customer)) == "Anna from Gdańsk"


# --- the valid-input strategies (tests/strategies.py) -------------------------------------------


def _bindings() -> list[Any]:
    """Every distinct parameter set used in the examples (and the no-param binding if legal)."""
    rows = []
    for definition in TRANSFORMS.values():
        seen: list[str] = []
        candidates = [((), {})] + [(ex.args, ex.kwargs) for ex in definition.examples if not ex.fails]
        for args, kwargs in candidates:
            try:
                bound = definition.bind(args, kwargs)
            except TransformArgError:
                continue
            if bound.label in seen:
                continue
            seen.append(bound.label)
            rows.append(pytest.param(bound, id=bound.label))
    return rows


@pytest.mark.parametrize("bound", _bindings())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_strategy_inputs_are_accepted_and_round_trip(bound: BoundTransform, data: st.DataObject):
    value = data.draw(VALID_INPUTS[bound.name](bound), label="native")
    canonical = forward(bound, value)
    inverse = bound.definition.inverse
    if inverse is None:
        return
    if inverse is IDENTITY:
        native = canonical
    else:
        try:
            native = backward(bound, canonical)
        except TransformArgError:
            return
    if canonical is None:
        return
    again = forward(bound, native)
    assert same(again, canonical), f"{bound.label}: {value!r} -> {canonical!r} -> {native!r} -> {again!r}"


STRIP_EMAIL = [get_transform("strip").bind((), {}), get_transform("email").bind((), {})]


@settings(max_examples=20)
@given(value=pipeline_strategy(STRIP_EMAIL))
def test_pipeline_strategy_skips_leading_cleaners(value: Any):
    assert "@" in value
    get_transform("email").bind((), {}).step(get_transform("strip").bind((), {}).step(value))


# --- the generated reference --------------------------------------------------------------------


def test_docs_are_up_to_date():
    committed = (ROOT / "docs" / "transforms.md").read_text(encoding="utf-8")
    assert committed == render_transforms_md(), "docs/transforms.md is stale: run `uv run python -m mappings.docs`"
