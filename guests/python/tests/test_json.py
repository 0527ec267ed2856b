"""The Python guests' JSON (hotswap_guest.json) against what Rust's serde_json does with the same
input (guests/c/test/json_cases.txt): values must come out byte for byte the same; inputs that
serde_json refuses must be refused (the Python messages have their own words)."""

import pathlib
import unittest

from hotswap_guest import json

CASES = pathlib.Path(__file__).resolve().parents[2] / "c" / "test" / "json_cases.txt"
ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}

# Where serde_json (without its float_roundtrip feature) reads a 17-digit float one ulp away
# from the nearest double; Python reads it exactly. Not a difference in the written form.
SERDE_INEXACT = {"1234567890123456.5"}


def unescape(text):
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPES:
            out.append(ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class SerdeCases(unittest.TestCase):
    def test_every_case_comes_out_as_serde_json_writes_it(self):
        cases = 0
        for line in CASES.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or "\t" not in line:
                continue
            source, want = line.split("\t", 1)
            if source in SERDE_INEXACT:
                continue
            cases += 1
            with self.subTest(source=source[:60]):
                data = unescape(source).encode("utf-8")
                if want.startswith("ERR "):
                    with self.assertRaises(json.JsonError) as refused:
                        json.decode(data)
                    self.assertTrue(str(refused.exception).startswith("not JSON: "))
                else:
                    self.assertEqual(json.encode(json.decode(data)).decode("utf-8"), want)
        self.assertGreater(cases, 100)


class Encoding(unittest.TestCase):
    def test_floats_are_written_as_serde_json_writes_them(self):
        for number, text in [(1.0, "1.0"), (0.00001, "0.00001"), (1e-6, "1e-6"), (1e16, "1e+16"),
                             (-0.0, "-0.0"), (123.456, "123.456"), (float("nan"), "null")]:
            self.assertEqual(json.format_float(number), text)

    def test_integers_beyond_64_bits_become_floats(self):
        self.assertEqual(json.encode(2**64), b"1.8446744073709552e+19")
        self.assertEqual(json.encode(-(2**63)), b"-9223372036854775808")

    def test_keys_must_be_strings_and_values_json(self):
        with self.assertRaises(json.JsonError):
            json.encode({1: 2})
        with self.assertRaises(json.JsonError):
            json.encode({"a": object()})

    def test_invalid_utf8_is_not_json(self):
        with self.assertRaisesRegex(json.JsonError, "^not JSON: invalid UTF-8"):
            json.decode(b'"\xff"')


if __name__ == "__main__":
    unittest.main()
