"""JSON as the Rust guests write it: decode and encode payloads and states so that a state
written here is byte for byte what Rust's serde_json writes for the same content.

Why not the standard library's json alone: `json.dumps` differs from serde_json in ways that
would make a Python snapshot differ from a Rust one (float exponents such as `1e-05` for
`0.00001`, integers such as `1.0` kept as floats) and `json.loads` accepts what serde_json
refuses (`NaN`, lone surrogates, numbers out of range, any depth). So decoding uses
`json.loads` with hooks and a check, and encoding is written out here:

- objects with their keys sorted (serde_json's `Value` keeps a `BTreeMap`), no spaces;
- integers that fit in i64 or u64 stay integers, larger ones become floats (as in serde_json);
- floats in serde_json's shortest form: `1.0`, `0.00001`, `1e-6`, `1e+16`, `1.5e+300`;
- strings escaped as serde_json does: `"`, `\\`, `\\n`-style short forms, `\\u00XX` for the
  other control characters, everything else as UTF-8.

A megabyte of state took half a second each way, mostly Python calls per value (a hook per
integer, a check per string, a `json.dumps` per key). So each direction lets the standard
library's C code do the whole document when it gives exactly what the careful way gives: when
the text holds no `-0` and no integer that may not fit in 64 bits (`decode`), and when the value
holds no float and no integer beyond 64 bits (`encode`).
"""

import json as _json
import math
import re
from decimal import Decimal

# serde_json refuses more than 127 nested arrays or objects ("recursion limit exceeded").
MAX_DEPTH = 127

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
# Integer literals that `int` alone does not read as serde_json does: `-0` (a float there), and
# 19 digits or more (past i64 or u64 there, a float). Looked for in strings too: a string that
# merely looks like one costs the integer hook, nothing more.
_SPECIAL_INTEGER = re.compile(r"-0|[0-9]{19}")


class JsonError(ValueError):
    """Bytes that are not JSON (the message starts with `not JSON: `) or not the JSON that
    was wanted."""


def decode(data: bytes):
    """Decodes `data` (UTF-8 JSON) into None, bool, int, float, str, list or dict.
    Raises JsonError saying `not JSON: ...` and where, for anything serde_json would refuse."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonError(f"not JSON: invalid UTF-8 at byte {error.start}") from None
    hooks = {"parse_int": _parse_int} if _SPECIAL_INTEGER.search(text) else {}
    try:
        value = _json.loads(
            text,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
            **hooks,
        )
    except _json.JSONDecodeError as error:
        raise JsonError(f"not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise JsonError("not JSON: recursion limit exceeded") from None
    except ValueError as error:  # from the hooks, or int() refusing a huge literal
        raise JsonError(f"not JSON: {error}") from None
    # A lone surrogate can only come from a `\\u` escape, and a nesting too deep needs more
    # brackets than the limit: without either, there is nothing to check.
    if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
        _check(value, 0)
    return value


def _parse_int(text: str):
    number = int(text)
    if text == "-0":
        return -0.0  # serde_json reads `-0` as the float -0.0
    if _I64_MIN <= number <= _U64_MAX:
        return number
    return _parse_float(text)  # serde_json: an integer out of range is a float


def _parse_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number out of range: {text[:40]}")
    return number


def _refuse_constant(name: str):
    raise ValueError(f"expected value, found {name}")


def _check(value, depth: int) -> None:
    """Refuses what json.loads lets through and serde_json does not: too deep a nesting,
    strings with lone surrogates (they have no UTF-8 form)."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise JsonError("not JSON: lone surrogate in a \\u escape")
    elif isinstance(value, (list, dict)):
        if depth >= MAX_DEPTH:
            raise JsonError("not JSON: recursion limit exceeded")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check(key, depth)
            _check(item, depth + 1)


def encode(value) -> bytes:
    """Encodes `value` as compact JSON, exactly as serde_json writes a `Value`. Raises
    JsonError for what JSON cannot hold (a key that is not a string, a set, an object)."""
    if _plain(value):
        text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    else:
        parts: list = []
        _write(value, parts)
        text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonError("cannot encode as JSON: a string holds a lone surrogate") from None


def to_text(value) -> str:
    """`value` as JSON text, for a log line (`put a = 42`, `get a -> "x"`)."""
    return encode(value).decode("utf-8")


def _plain(value) -> bool:
    """Whether `json.dumps` writes `value` exactly as `_write` does (sorting keys, without
    spaces): only None, bools, strings, integers within 64 bits, lists, tuples and dicts with
    string keys, of exactly those types. Floats are not: `json.dumps` writes `1e-05`. Nor is
    anything nested deeper than serde_json reads, a cycle included: `_write` says what is wrong."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if not _I64_MIN <= item <= _U64_MAX:
                return False
        elif depth >= MAX_DEPTH:
            return False
        elif kind is dict:
            for key, inner in item.items():
                if type(key) is not str:
                    return False
                pending.append((inner, depth + 1))
        elif kind is list or kind is tuple:
            pending.extend((inner, depth + 1) for inner in item)
        else:
            return False
    return True


def _write(value, parts: list) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(str(value) if _I64_MIN <= value <= _U64_MAX else format_float(float(value)))
    elif isinstance(value, float):
        parts.append(format_float(value))
    elif isinstance(value, str):
        parts.append(_json.dumps(value, ensure_ascii=False))
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise JsonError(f"cannot encode as JSON: key must be a string, not {key!r}")
        parts.append("{")
        for index, key in enumerate(sorted(value)):  # code point order = UTF-8 byte order
            if index:
                parts.append(",")
            parts.append(_json.dumps(key, ensure_ascii=False))
            parts.append(":")
            _write(value[key], parts)
        parts.append("}")
    else:
        raise JsonError(f"cannot encode as JSON: {type(value).__name__} is not a JSON value")


def format_float(number: float) -> str:
    """`number` as serde_json writes an f64: the shortest digits that read back to it, in
    plain notation when the decimal exponent is within -5..=15 (`0.00001`, `1e+16` is
    already outside), else `d.ddde±x`; a whole number keeps `.0`. Not finite: `null`."""
    if not math.isfinite(number):
        return "null"
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")  # repr's digits are the shortest
    exponent += len(digit_tuple) - len(digits)
    prefix = "-" if sign else ""
    if not digits:
        return prefix + "0.0"
    point = len(digits) + exponent  # the value is 0.DIGITS x 10^point
    scientific = point - 1
    if -5 <= scientific <= 15:
        if exponent >= 0:
            return f"{prefix}{digits}{'0' * exponent}.0"
        if point > 0:
            return f"{prefix}{digits[:point]}.{digits[point:]}"
        return f"{prefix}0.{'0' * -point}{digits}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{prefix}{mantissa}e{'+' if scientific > 0 else '-'}{abs(scientific)}"
