"""Records/s of the compiled mapping engine against glom and jsonata-python, in one run.

The workload is the shipped Shopify mapping (``mappings/shopify.yaml``, entity ``order``, way in)
applied to a realistic Shopify order with 5 line items, built from
``mappings/samples/shopify-order.json``. The same mapping is written by hand as a glom spec and as
a JSONata expression; before anything is timed, each competitor's output is checked against ours
(on that order and on the order cases of ``mappings/shopify.test.yaml``) and the script exits
non-zero (2) if they differ. Then the three are timed in interleaved rounds and
the median records/s of each is reported, with the ratios against the goals (ours ≥ 5× glom,
≥ 20× jsonata-python).

    uv run python bench/mapping.py                # print the figures
    uv run python bench/mapping.py --write-docs   # ... and update docs/benchmarks.md
    uv run python bench/mapping.py --profile      # ... and cProfile our engine (top 10, cumulative)
    uv run python bench/mapping.py --check-goals  # ... and exit 1 if a goal is missed

How the three compare, field by field (see ``GLOM_NOTES`` / ``JSONATA_NOTES`` for the details):

* glom calls the *same* transform functions ours does (``mappings.transforms``), as plain Python
  callables in the spec — the idiomatic way to transform in glom — so both produce the same Python
  types (Decimal, aware datetime) and the outputs must be equal exactly, types included. The
  ratio therefore measures the engines, not the transforms.
* JSONata has no decimals, no datetimes and no libphonenumber, so the expression does what a
  JSONata author would: amounts as 2-decimal strings via ``$formatNumber``, timestamps via
  ``$toMillis``/``$fromMillis`` as UTC ISO strings, phones with a regex. Its output is compared
  with ours after ``mappings.testfile.to_jsonable`` (Decimals and datetimes as the strings the
  test files use) — and must then be equal exactly.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import functools
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/mapping.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

import glom  # noqa: E402
import jsonata  # noqa: E402
import yaml  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._docs import replace_section  # noqa: E402
from mappings.compiler import CompiledEntity  # noqa: E402
from mappings.loader import load_mapping  # noqa: E402
from mappings.registry import Context  # noqa: E402
from mappings.testfile import diff, to_jsonable  # noqa: E402
from mappings.transforms._countries import ALPHA2, ALPHA3  # noqa: E402
from mappings.transforms.dates import datetime_  # noqa: E402
from mappings.transforms.ids import lookup  # noqa: E402
from mappings.transforms.numeric import decimal_, money  # noqa: E402
from mappings.transforms.tables import country_iso2  # noqa: E402
from mappings.transforms.text import _EMAIL, email, empty_to_none, lower, phone_e164, strip, upper  # noqa: E402

MAPPING_FILE = ROOT / "mappings" / "shopify.yaml"
SAMPLE_FILE = ROOT / "mappings" / "samples" / "shopify-order.json"
TEST_FILE = ROOT / "mappings" / "shopify.test.yaml"
DOCS_FILE = ROOT / "docs" / "benchmarks.md"
SECTION = "## Mapping engine"
COMMAND = "uv run python bench/mapping.py --write-docs"

GOAL_GLOM = 5.0
GOAL_JSONATA = 20.0
LINES = 5

# --- the workload -----------------------------------------------------------------------------


def _money(amount: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": "PLN"}}


def _line(sku: str, name: str, quantity: int, unit: str, discount: str, total: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": name,
        "quantity": quantity,
        "originalUnitPriceSet": _money(unit),
        "totalDiscountSet": _money(discount),
        "discountedTotalSet": _money(total),
    }


def build_order() -> dict[str, Any]:
    """The shipped sample order (paid guest checkout to an InPost locker), grown to 5 lines.

    The sample's two lines are kept; three are added — a discounted blanket with a padded SKU, a
    multi-unit candle, and a gift-wrapping custom item whose SKU is "" (as Shopify sends it).
    The order totals are recomputed so the record stays consistent (23% VAT included).
    """
    order: dict[str, Any] = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    nodes = order["lineItems"]["nodes"]
    nodes += [
        _line(" KOC-WEL-150 ", "Koc wełniany 150x200", 1, "149.00", "14.9", "134.1"),
        _line("SWIECA-SOJ-01", "Świeca sojowa lawenda 180 g", 3, "34.90", "0.0", "104.7"),
        _line("", "Pakowanie na prezent", 1, "10", "0.0", "10.0"),
    ]
    assert len(nodes) == LINES, len(nodes)
    subtotal = sum(round(float(n["discountedTotalSet"]["shopMoney"]["amount"]) * 100) for n in nodes)
    discounts = sum(round(float(n["totalDiscountSet"]["shopMoney"]["amount"]) * 100) for n in nodes)
    shipping = round(float(order["shippingLine"]["originalPriceSet"]["shopMoney"]["amount"]) * 100)
    total = subtotal + shipping
    tax = round(total * 23 / 123)
    for key, cents in [
        ("subtotalPriceSet", subtotal),
        ("totalDiscountsSet", discounts),
        ("totalShippingPriceSet", shipping),
        ("totalTaxSet", tax),
        ("totalPriceSet", total),
    ]:
        order[key] = _money(f"{cents // 100}.{cents % 100:02d}")
    return order


# --- glom -------------------------------------------------------------------------------------

GLOM_NOTES = [
    "the transforms are the same Python functions ours runs (`strip`, `email`, `money`, `datetime`, ...), "
    "params bound with `functools.partial`; value maps are plain dict lookups (`table.get(v, default)`)",
    "`source_system` is `Val('shopify')`; ours runs `template(\"shopify\")` per record",
    "a missing key gives null (`Coalesce(path, default=None)`, which also makes paths null-safe) where ours "
    "leaves the field out",
    "it stops at the first failing field; ours maps every field and reports all the failures",
]

CHANNEL = {"web": "web", "pos": "store", "shopify_draft_order": "crm", "iphone": "app", "android": "app"}
STATUS = {
    "UNFULFILLED": "confirmed",
    "OPEN": "confirmed",
    "SCHEDULED": "confirmed",
    "ON_HOLD": "processing",
    "PENDING_FULFILLMENT": "processing",
    "IN_PROGRESS": "processing",
    "PARTIALLY_FULFILLED": "processing",
    "REQUEST_DECLINED": "processing",
    "FULFILLED": "shipped",
    "FULFILLMENT_NOT_REQUIRED": "completed",
    "RESTOCKED": "returned",
}
PAYMENT = {
    "PENDING": "pending",
    "AUTHORIZED": "authorized",
    "PAID": "paid",
    "PARTIALLY_PAID": "partially_paid",
    "REFUNDED": "refunded",
    "PARTIALLY_REFUNDED": "partially_refunded",
    "VOIDED": "voided",
    "EXPIRED": "failed",
}
METHOD = {
    "inpost_locker_standard": "parcel_locker",
    "Paczkomat InPost": "parcel_locker",
    "inpost_courier_standard": "courier",
    "Kurier InPost": "courier",
    "Kurier DPD": "courier",
    "Local pickup": "click_and_collect",
    "Odbiór osobisty": "click_and_collect",
}
CARRIER = {
    "inpost_locker_standard": "inpost",
    "Paczkomat InPost": "inpost",
    "inpost_courier_standard": "inpost",
    "Kurier InPost": "inpost",
    "Kurier DPD": "dpd",
}


def _opt(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Skip the step on null, as the engine does for every transform that does not accept None."""
    return lambda v: None if v is None else fn(v)


def _required(v: Any) -> Any:
    if v is None:
        raise ValueError("required value is missing")
    return v


def _strict(table: dict[str, Any]) -> Callable[[Any], Any]:
    return table.__getitem__  # an unknown value raises, like `map` without a default


def _lenient(table: dict[str, Any], default: Any) -> Callable[[Any], Any]:
    return lambda v: table.get(v, default)


def _attr(key: str) -> Callable[[Any], Any]:
    """customAttributes[key=...]: the first element whose key matches (compared as text)."""

    def pick(items: list[Any]) -> Any:
        for item in items:
            if isinstance(item, dict) and str(item.get("key")) == key:
                return item
        return None

    return pick


def _or_empty(v: Any) -> Any:
    return [] if v is None else v


_phone = functools.partial(phone_e164, region="PL")
_OFFLINE = Context(None, "shopify", None)


def _customer(v: Any) -> Any:
    return lookup(v, _OFFLINE, "customer")


def g(path: str, *steps: Callable[[Any], Any], required: bool = False) -> tuple[Any, ...]:
    """One field: a null-safe path (a plain path if required) and its transforms, null-guarded."""
    head = path if required else glom.Coalesce(path, default=None)
    tail = (_required,) if required else ()
    return (head, *(_opt(s) for s in steps), *tail)


def glom_spec() -> glom.Spec:
    line = {
        "sku": g("sku", strip, empty_to_none),
        "name": g("name", strip),
        "quantity": g("quantity", decimal_, required=True),
        "unit_price": g("originalUnitPriceSet.shopMoney.amount", money),
        "discount": g("totalDiscountSet.shopMoney.amount", money),
        "total": g("discountedTotalSet.shopMoney.amount", money),
    }
    attrs = glom.Coalesce("customAttributes", default=None)
    spec = {
        "number": g("name", strip, required=True),
        "customer_id": g("customer.id", _customer),
        "email": g("email", empty_to_none, email),
        "phone": g("phone", empty_to_none, _phone),
        "channel": g("sourceName", _lenient(CHANNEL, "web")),
        "source_system": glom.Val("shopify"),
        "status": g("displayFulfillmentStatus", _strict(STATUS)),
        "payment_status": g("displayFinancialStatus", _strict(PAYMENT)),
        "currency": g("currencyCode"),
        "subtotal": g("subtotalPriceSet.shopMoney.amount", money),
        "shipping_total": g("totalShippingPriceSet.shopMoney.amount", money),
        "tax_total": g("totalTaxSet.shopMoney.amount", money),
        "discount_total": g("totalDiscountsSet.shopMoney.amount", money),
        "total": g("totalPriceSet.shopMoney.amount", money, required=True),
        "lines": (glom.Coalesce("lineItems.nodes", default=None), _or_empty, [line]),
        "delivery": {
            "method": g("shippingLine.code", _lenient(METHOD, "courier")),
            "carrier": g("shippingLine.code", _lenient(CARRIER, None)),
            "locker_point_id": (
                attrs,
                _opt(_attr("inpost_point")),
                glom.Coalesce("value", default=None),
                _opt(strip),
                _opt(upper),
            ),
            "store_id": (attrs, _opt(_attr("pickup_store")), glom.Coalesce("value", default=None), _opt(strip)),
            "price": g("shippingLine.originalPriceSet.shopMoney.amount", money),
            "address": {
                "first_name": g("shippingAddress.firstName", strip),
                "last_name": g("shippingAddress.lastName", strip),
                "line1": g("shippingAddress.address1", strip),
                "line2": g("shippingAddress.address2", empty_to_none),
                "postal_code": g("shippingAddress.zip", strip),
                "city": g("shippingAddress.city", strip),
                "country": g("shippingAddress.countryCodeV2", country_iso2),
                "phone": g("shippingAddress.phone", empty_to_none, _phone),
            },
        },
        "billing_address": {
            "first_name": g("billingAddress.firstName", strip),
            "last_name": g("billingAddress.lastName", strip),
            "company": g("billingAddress.company", empty_to_none),
            "line1": g("billingAddress.address1", strip),
            "postal_code": g("billingAddress.zip", strip),
            "city": g("billingAddress.city", strip),
            "country": g("billingAddress.countryCodeV2", country_iso2),
        },
        "tags": (glom.Coalesce("tags", default=None), _or_empty, [(_opt(strip), _opt(lower))]),
        "note": g("note", empty_to_none),
        "placed_at": g("processedAt", datetime_),
        "updated_at": g("updatedAt", datetime_),
    }
    return glom.Spec(spec)


# --- JSONata ----------------------------------------------------------------------------------

JSONATA_NOTES = [
    "no decimal type: amounts are strings from `$formatNumber($number(x), '0.00')` (the form "
    "`to_jsonable` gives ours), computed through a float, so half-way cases round like binary floats "
    '(`"2.675"` gives `2.67`, ours `2.68`); quantities are `$string($number(n))`',
    "no datetime type either: timestamps are `$fromMillis($toMillis(x), picture)` written as `…+00:00` like "
    "`to_jsonable`, to the second (ours keeps microseconds)",
    "`$trim` also collapses inner runs of whitespace (Python's `strip` does not) and trims only ASCII whitespace",
    "phone: a regex for `+48` / `0048` / 9-digit Polish numbers instead of libphonenumber (no check that the "
    "number can exist, no other regions)",
    "country: ISO alpha-2/alpha-3 codes through a lookup table bound once with `assign()`; country names "
    "(Polska, Deutschland) are not understood",
    "e-mail: the same regular expression as the `email` transform, via `$contains` (jsonata-python runs Python's `re`)",
    '`customer.id` → `lookup("customer")` needs the sync core\'s cross-reference: offline it is an `$error`, '
    "as ours fails offline; the benchmark order is a guest checkout (`customer: null`), so no engine runs it",
    "`source_system` is the literal `'shopify'`; a missing key gives null where ours leaves the field out",
]

TS_PICTURE = "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01]+00:00"

JSONATA_EXPR = r"""
(
  $ok := function($v) { $exists($v) and $v != null };
  $strip := function($v) { $ok($v) ? $trim($v) : null };
  $e2n := function($v) { $ok($v) and $trim($v) != "" ? $v : null };
  $upper := function($v) { $ok($v) ? $uppercase($v) : null };
  $lower := function($v) { $ok($v) ? $lowercase($v) : null };
  $money := function($v) { $ok($v) ? $formatNumber($number($v), "0.00") : null };
  $dec := function($v) { $ok($v) ? $string($number($v)) : null };
  $ts := function($v) { $ok($v) ? $fromMillis($toMillis($v), "TS_PICTURE") : null };
  $req := function($v) { $ok($v) ? $v : $error("required value is missing") };
  $strict := function($table, $v) {
    $ok($v) ? ($r := $lookup($table, $v); $exists($r) ? $r : $error($v & " is not in the table")) : null
  };
  $lenient := function($table, $v, $default) {
    $ok($v) ? ($r := $lookup($table, $v); $exists($r) ? $r : $default) : null
  };
  $email := function($v) {
    $ok($v) ? (
      $x := $lowercase($trim($v));
      $length($x) <= 254 and $contains($x, /^EMAIL_RE$/) ? $x : $error("not a valid email address")
    ) : null
  };
  $phone := function($v) {
    $ok($v) ? (
      $d := $replace($string($v), /[\s().\-]/, "");
      $n := $substring($d, 0, 1) = "+" ? $d
          : $substring($d, 0, 2) = "00" ? "+" & $substring($d, 2)
          : $length($d) = 9 ? "+48" & $d
          : $length($d) = 11 and $substring($d, 0, 2) = "48" ? "+" & $d
          : $d;
      $contains($n, /^\+[1-9][0-9]{7,14}$/) ? $n : $error("not a valid phone number")
    ) : null
  };
  $country := function($v) {
    $ok($v) ? ($c := $lookup($countries, $uppercase($trim($v))); $exists($c) ? $c : $error("not a known country"))
    : null
  };
  $customer := function($v) {
    $ok($v) ? $error("lookup needs the sync core's cross-reference (not available offline)") : null
  };
  $attr := function($key) { (customAttributes[key = $key])[0].value };
  $channels := {"web": "web", "pos": "store", "shopify_draft_order": "crm", "iphone": "app", "android": "app"};
  $statuses := {
    "UNFULFILLED": "confirmed", "OPEN": "confirmed", "SCHEDULED": "confirmed",
    "ON_HOLD": "processing", "PENDING_FULFILLMENT": "processing", "IN_PROGRESS": "processing",
    "PARTIALLY_FULFILLED": "processing", "REQUEST_DECLINED": "processing",
    "FULFILLED": "shipped", "FULFILLMENT_NOT_REQUIRED": "completed", "RESTOCKED": "returned"
  };
  $payments := {
    "PENDING": "pending", "AUTHORIZED": "authorized", "PAID": "paid", "PARTIALLY_PAID": "partially_paid",
    "REFUNDED": "refunded", "PARTIALLY_REFUNDED": "partially_refunded", "VOIDED": "voided", "EXPIRED": "failed"
  };
  $methods := {
    "inpost_locker_standard": "parcel_locker", "Paczkomat InPost": "parcel_locker",
    "inpost_courier_standard": "courier", "Kurier InPost": "courier", "Kurier DPD": "courier",
    "Local pickup": "click_and_collect", "Odbiór osobisty": "click_and_collect"
  };
  $carriers := {
    "inpost_locker_standard": "inpost", "Paczkomat InPost": "inpost", "inpost_courier_standard": "inpost",
    "Kurier InPost": "inpost", "Kurier DPD": "dpd"
  };
  {
    "number": $req($strip(name)),
    "customer_id": $customer(customer.id),
    "email": $email($e2n(email)),
    "phone": $phone($e2n(phone)),
    "channel": $lenient($channels, sourceName, "web"),
    "source_system": "shopify",
    "status": $strict($statuses, displayFulfillmentStatus),
    "payment_status": $strict($payments, displayFinancialStatus),
    "currency": currencyCode,
    "subtotal": $money(subtotalPriceSet.shopMoney.amount),
    "shipping_total": $money(totalShippingPriceSet.shopMoney.amount),
    "tax_total": $money(totalTaxSet.shopMoney.amount),
    "discount_total": $money(totalDiscountsSet.shopMoney.amount),
    "total": $req($money(totalPriceSet.shopMoney.amount)),
    "lines": [lineItems.nodes.{
      "sku": $e2n($strip(sku)),
      "name": $strip(name),
      "quantity": $req($dec(quantity)),
      "unit_price": $money(originalUnitPriceSet.shopMoney.amount),
      "discount": $money(totalDiscountSet.shopMoney.amount),
      "total": $money(discountedTotalSet.shopMoney.amount)
    }],
    "delivery": {
      "method": $lenient($methods, shippingLine.code, "courier"),
      "carrier": $lenient($carriers, shippingLine.code, null),
      "locker_point_id": $upper($strip($attr("inpost_point"))),
      "store_id": $strip($attr("pickup_store")),
      "price": $money(shippingLine.originalPriceSet.shopMoney.amount),
      "address": {
        "first_name": $strip(shippingAddress.firstName),
        "last_name": $strip(shippingAddress.lastName),
        "line1": $strip(shippingAddress.address1),
        "line2": $e2n(shippingAddress.address2),
        "postal_code": $strip(shippingAddress.zip),
        "city": $strip(shippingAddress.city),
        "country": $country(shippingAddress.countryCodeV2),
        "phone": $phone($e2n(shippingAddress.phone))
      }
    },
    "billing_address": {
      "first_name": $strip(billingAddress.firstName),
      "last_name": $strip(billingAddress.lastName),
      "company": $e2n(billingAddress.company),
      "line1": $strip(billingAddress.address1),
      "postal_code": $strip(billingAddress.zip),
      "city": $strip(billingAddress.city),
      "country": $country(billingAddress.countryCodeV2)
    },
    "tags": [tags.$lower($strip($))],
    "note": $e2n(note),
    "placed_at": $ts(processedAt),
    "updated_at": $ts(updatedAt)
  }
)
"""


def jsonata_expr() -> jsonata.Jsonata:
    text = JSONATA_EXPR.replace("TS_PICTURE", TS_PICTURE).replace("EMAIL_RE", _EMAIL.pattern)
    expr = jsonata.Jsonata(text)
    countries = {code: code for code in ALPHA2} | dict(ALPHA3)
    expr.assign("countries", countries)
    return expr


# --- checks -----------------------------------------------------------------------------------


def check_outputs(ours: Any, glommed: Any, jsonata_out: Any) -> list[str]:
    """Every difference between the competitors' outputs and ours; empty when all agree."""
    problems = [f"glom: {p}" for p in diff(ours, glommed)]
    # diff() compares leaves with == and the type: Decimal("0.0") == Decimal("0.00"), so compare
    # the written forms too (that catches a missing quantize).
    problems += [f"glom (as text): {p}" for p in diff(to_jsonable(ours), to_jsonable(glommed))]
    problems += [f"jsonata: {p}" for p in diff(to_jsonable(ours), jsonata_out)]
    return problems


def _all_null(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and all(_all_null(v) for v in value.values()))


def _prune(ours: Any, theirs: Any) -> Any:
    """``theirs`` without the null fields that ours leaves out (a key missing from the record)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return {k: _prune(ours.get(k), v) for k, v in theirs.items() if k in ours or not _all_null(v)}
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [_prune(a, b) for a, b in zip(ours, theirs, strict=True)]
    return theirs


def check_test_cases(entity: CompiledEntity, spec: glom.Spec, expr: jsonata.Jsonata) -> tuple[int, list[str]]:
    """The order cases of mappings/shopify.test.yaml (way in), through all three engines.

    A record ours maps must map to the same values (null allowed for a field ours leaves out
    because the key is missing); a record ours rejects must be rejected by the others too. The
    customer is set to null: ``lookup`` needs the sync core's cross-reference, which no engine has
    here. Returns the number of cases checked and the problems.
    """
    cases = yaml.safe_load(TEST_FILE.read_text(encoding="utf-8"))["cases"]
    problems: list[str] = []
    checked = 0
    for case in cases:
        if case["entity"] != "order" or case.get("direction", "in") != "in":
            continue
        checked += 1
        record = {**case["input"], "customer": None}
        out, errors = entity.map(record)
        expected = to_jsonable(out)
        for name, run in (("glom", lambda r: to_jsonable(spec.glom(r))), ("jsonata", expr.evaluate)):
            try:
                got = run(record)
            except Exception as exc:
                if not errors:
                    problems.append(f"{name} on {case['name']!r}: raised {type(exc).__name__}")
                continue
            if errors:
                problems.append(f"{name} on {case['name']!r}: accepted a record ours rejects ({errors[0]})")
            else:
                problems += [f"{name} on {case['name']!r}: {p}" for p in diff(expected, _prune(expected, got))]
    return checked, problems


# --- timing -----------------------------------------------------------------------------------


def calibrate(fn: Callable[[], Any], target: float) -> int:
    """How many calls take about ``target`` seconds (at least 20)."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= 0.05:
            break
        n *= 4
    n = max(20, int(n * target / elapsed))
    elapsed = 1 / run_once(fn, n) * n  # the first calls run cold: measure once more at full size
    return max(20, int(n * target / elapsed))


def run_once(fn: Callable[[], Any], n: int) -> float:
    """Records/s of one run of ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def measure(
    engines: dict[str, Callable[[], Any]], repeats: int, target: float
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Interleaved rounds (A B C A B C ...) so drift in clock speed hits all engines alike.

    Returns the records/s of every round per engine, and the records per round.
    """
    sizes = {name: calibrate(fn, target) for name, fn in engines.items()}
    results: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, fn in engines.items():
            results[name].append(run_once(fn, sizes[name]))
    return results, sizes


# --- machine and report -----------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "glom": metadata.version("glom"),
        "jsonata-python": metadata.version("jsonata-python"),
    }


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def render_section(rows: list[dict[str, Any]], ratios: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = [SECTION, ""]
    out.append(
        f"The shipped Shopify mapping (`mappings/shopify.yaml`, entity `order`, way in) on one Shopify order "
        f"with {LINES} line items, against the same mapping written as a glom spec and as a JSONata "
        "expression (jsonata-python). Higher is better."
    )
    out += ["", f"Produced by `{COMMAND}` on {info['date']}:", ""]
    out += ["| engine | records/s (median) | records/s (best) | µs/record (median) | rounds × records |"]
    out += ["|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(
            f"| {r['engine']} | {fmt_rate(r['median'])} | {fmt_rate(r['best'])} | "
            f"{1e6 / r['median']:,.1f} | {r['runs']} × {r['n']:,} |"
        )
    out += ["", "| ratio (medians) | measured | goal | |", "|---|---:|---:|---|"]
    for r in ratios:
        out.append(f"| {r['name']} | {r['ratio']:.1f}× | ≥ {r['goal']:.0f}× | {'PASS' if r['ok'] else 'MISS'} |")
    m = info["machine"]
    out += [
        "",
        f"Machine: {m['cpu']} ({m['cores']} logical CPUs); {m['platform']}; {m['python']}; "
        f"glom {m['glom']}, jsonata-python {m['jsonata-python']}.",
        "",
        "### How this is measured",
        "",
        f"One Shopify order — `mappings/samples/shopify-order.json` with its line items grown to {LINES} — is "
        "mapped by `load_mapping('mappings/shopify.yaml').entities['order'].to_canonical(record)` (every field "
        "the order entity maps on the way in: renames, nested paths, the lines array, value maps, money and "
        "quantity decimals, timestamps to aware UTC, e-mail, phone and country normalisation), by the same "
        "mapping written by hand as a glom spec, and as one JSONata expression. Each engine is prepared once, "
        "outside the timing (`load_mapping`, `glom.Spec(...)`, `jsonata.Jsonata(expr)`). Before timing, the "
        "script checks that glom's output equals ours exactly (types included) and JSONata's equals ours after "
        "`mappings.testfile.to_jsonable`, and runs the order cases of `mappings/shopify.test.yaml` through all "
        "three; any difference exits non-zero. Each engine then maps the same record in a loop calibrated to "
        f"about {info['target']:.1f} s, timed with `time.perf_counter`, in {info['repeats']} interleaved rounds "
        "per engine (one process, garbage collector on); the figure is the median round, ratios are of the "
        "medians. Phone and country lookups are memoised, so they are warm — for ours and glom alike, which "
        "call the same transform functions: the glom ratio measures the engines, not the transforms.",
        "",
        "Where the competitors' versions differ from ours (none of it affects the benchmark record):",
        "",
    ]
    out += [f"- glom: {n}" for n in GLOM_NOTES]
    out += [f"- JSONata: {n}" for n in JSONATA_NOTES]
    return "\n".join(out) + "\n"


def write_docs(section: str) -> None:
    """Replace the "## Mapping engine" section of docs/benchmarks.md, keeping every other section."""
    assert section.startswith(SECTION)
    replace_section(section)


def profile(fn: Callable[[], Any], n: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("cumulative").print_stats(10)
    stream.write("\n")
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(10)
    return stream.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-docs", action="store_true", help=f"update the '{SECTION}' section of {DOCS_FILE}")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds per engine (default 9)")
    parser.add_argument("--target", type=float, default=0.5, help="seconds per timed round (default 0.5)")
    parser.add_argument("--profile", action="store_true", help="also cProfile our engine (top 10)")
    parser.add_argument("--check-goals", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    console = Console()

    record = build_order()
    entity = load_mapping(MAPPING_FILE).entities["order"]
    spec = glom_spec()
    expr = jsonata_expr()

    # Each competitor gets its own copy, so none can see another's mutation (none should mutate).
    rec_ours, rec_glom, rec_jsonata = record, copy.deepcopy(record), copy.deepcopy(record)
    ours = entity.to_canonical
    engines: dict[str, Callable[[], Any]] = {
        "synchub (compiled)": lambda: ours(rec_ours),
        "glom": lambda: spec.glom(rec_glom),
        "jsonata-python": lambda: expr.evaluate(rec_jsonata),
    }

    problems = check_outputs(ours(rec_ours), spec.glom(rec_glom), expr.evaluate(rec_jsonata))
    if rec_ours != record or rec_glom != record or rec_jsonata != record:
        problems.append("an engine modified its input record")
    cases, case_problems = check_test_cases(entity, spec, expr)
    problems += case_problems
    if problems:
        console.print("[bold red]outputs differ — no figures, since the engines would not do the same work:")
        for p in problems:
            console.print(f"  {p}", markup=False)
        return 2
    console.print(
        f"outputs agree on the {LINES}-line order (glom exactly, jsonata after to_jsonable) and on the {cases} "
        f"order cases of {TEST_FILE.relative_to(ROOT)} (null allowed where ours leaves a missing key out)"
    )

    started = time.perf_counter()
    results, sizes = measure(engines, args.repeats, args.target)
    elapsed = time.perf_counter() - started

    rows: list[dict[str, Any]] = [
        {"engine": name, "median": statistics.median(r), "best": max(r), "runs": len(r), "n": sizes[name]}
        for name, r in results.items()
    ]
    ours_rate, glom_rate, jsonata_rate = (r["median"] for r in rows)
    ratios: list[dict[str, Any]] = [
        {"name": "synchub / glom", "ratio": ours_rate / glom_rate, "goal": GOAL_GLOM},
        {"name": "synchub / jsonata-python", "ratio": ours_rate / jsonata_rate, "goal": GOAL_JSONATA},
    ]
    for r in ratios:
        r["ok"] = r["ratio"] >= r["goal"]

    table = Table(title=f"Shopify order ({LINES} lines) → canonical, records/s")
    table.add_column("engine")
    table.add_column("median", justify="right")
    table.add_column("best", justify="right")
    table.add_column("µs/record", justify="right")
    table.add_column("rounds × records", justify="right")
    for r in rows:
        table.add_row(
            r["engine"],
            fmt_rate(r["median"]),
            fmt_rate(r["best"]),
            f"{1e6 / r['median']:,.1f}",
            f"{r['runs']} × {r['n']:,}",
        )
    console.print(table)
    verdicts = Table(title="ratios (of the medians)")
    verdicts.add_column("ratio")
    verdicts.add_column("measured", justify="right")
    verdicts.add_column("goal", justify="right")
    verdicts.add_column("")
    for r in ratios:
        verdict = "[green]PASS" if r["ok"] else "[red]MISS"
        verdicts.add_row(r["name"], f"{r['ratio']:.1f}×", f"≥ {r['goal']:.0f}×", verdict)
    console.print(verdicts)
    info = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "repeats": args.repeats,
        "target": args.target,
    }
    m = info["machine"]
    console.print(
        f"{m['cpu']} ({m['cores']} CPUs) | {m['platform']} | {m['python']} | glom {m['glom']}, "
        f"jsonata-python {m['jsonata-python']} | timed part {elapsed:.1f} s",
        markup=False,
    )

    if args.profile:
        print(profile(engines["synchub (compiled)"], sizes["synchub (compiled)"]))
    if args.write_docs:
        write_docs(render_section(rows, ratios, info))
        console.print(f"updated the '{SECTION}' section of {DOCS_FILE.relative_to(ROOT)}")
    if args.check_goals and not all(r["ok"] for r in ratios):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
