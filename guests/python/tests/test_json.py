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

    def test_a_large_state_reads_and_writes_exactly_whichever_way_it_goes(self):
        # The C code's way for most of these, the careful way once one value needs it.
        entries = {f"k{i:06}": i * 7 for i in range(3000)}
        entries["z\uffff"] = 'tab\there, quote " and \\ backslash'
        entries["z\U0001F600"] = [None, True, {"b": 1, "a": []}, -5]
        text = json.encode({"entries": entries})
        self.assertTrue(text.startswith(b'{"entries":{"k000000":0,"k000001":7,'))
        self.assertTrue(text.endswith(b'"z\xef\xbf\xbf":"tab\\there, quote \\" and \\\\ backslash",'
                                      b'"z\xf0\x9f\x98\x80":[null,true,{"a":[],"b":1},-5]}}'))
        self.assertEqual(json.encode(json.decode(text)), text)
        for special, want in [("1.0", 1.0), ("-0", -0.0), ("18446744073709551616", 1.8446744073709552e19),
                              ("18446744073709551615", 18446744073709551615), ("1e-05", 1e-05)]:
            with_special = text.replace(b'"k000001":7', b'"k000001":' + special.encode())
            value = json.decode(with_special)["entries"]["k000001"]
            self.assertEqual((type(value), value), (type(want), want), special)
            self.assertEqual(str(value).startswith("-"), special.startswith("-"), special)
            self.assertIn(b'"k000001":' + json.encode(want) + b",", json.encode(json.decode(with_special)))

    def test_depth_and_lone_surrogates_are_refused_in_large_documents_too(self):
        wide = "[" + "[]," * 300 + "[]]"
        self.assertEqual(len(json.decode(wide.encode())), 301)
        deep = "[" * 128 + "]" * 128
        with self.assertRaisesRegex(json.JsonError, "recursion limit exceeded"):
            json.decode(("[" + "[]," * 300 + deep + "]").encode())
        with self.assertRaisesRegex(json.JsonError, "lone surrogate"):
            json.decode(b'{"a":"\\ud800","b":[' + b"1," * 3000 + b"1]}")
        # Writing has no depth limit (serde_json's has none either): a deep value goes the
        # careful way and comes out whole.
        nested: list = []
        for _ in range(200):
            nested = [nested]
        self.assertEqual(json.encode(nested), b"[" * 201 + b"]" * 201)

    def test_invalid_utf8_is_not_json(self):
        with self.assertRaisesRegex(json.JsonError, "^not JSON: invalid UTF-8"):
            json.decode(b'"\xff"')


if __name__ == "__main__":
    unittest.main()
