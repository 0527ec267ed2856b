"""The Python kv (kv.py) through the exports that componentize-py calls, on a plain CPython with
a fake host: the same replies, errors, log lines and state as the Rust kv, and a crash that
aborts (a trap in the component)."""

import os
import unittest
from unittest import mock

import hotswap_guest
import kv
from hotswap_guest import Change, Error
from tests.fake_runtime import FakeRuntime


class KvTest(unittest.TestCase):
    def setUp(self):
        self.host = FakeRuntime()
        hotswap_guest.set_runtime(self.host)
        self.server = hotswap_guest.export(kv.Kv)()

    def call(self, request):
        return self.server.handle_call(request.encode(), 0).decode()

    def started(self, args=b""):
        self.server.init(args)
        return self

    def test_put_get_delete_reply_with_the_value_before(self):
        self.started()
        self.assertEqual(self.call('{"op":"get","key":"a"}'), "null")
        self.assertEqual(self.call('{"op":"put","key":"a","value":42}'), "null")
        self.assertEqual(self.call('{"op":"put","key":"a","value":[1.0]}'), "42")
        self.assertEqual(self.call('{"op":"get","key":"a"}'), "[1.0]")
        self.assertEqual(self.call('{"op":"delete","key":"a"}'), "[1.0]")
        self.assertEqual(self.call('{"op":"delete","key":"a"}'), "null")
        self.assertEqual(self.call('{"op":"count"}'), "0")

    def test_keys_are_sorted_and_the_state_is_entries(self):
        self.started()
        for key in ["b", "c", "a"]:
            self.call(f'{{"op":"put","key":"{key}","value":true}}')
        self.assertEqual(self.call('{"op":"keys"}'), '["a","b","c"]')
        self.assertEqual(self.call('{"op":"count"}'), "3")
        self.assertEqual(self.server.snapshot(), b'{"entries":{"a":true,"b":true,"c":true}}')

    def test_gets_and_puts_are_logged_like_rust_kv_v1(self):
        self.started()
        self.call('{"op":"put","key":"a","value":42}')
        self.call('{"op":"get","key":"a"}')
        self.assertEqual(self.host.lines, [("info", "put a = 42"), ("info", "get a -> 42")])

    def test_unknown_requests_name_what_was_wrong(self):
        self.started()
        cases = [
            ("put a 1", "unknown request: not JSON"),
            ('{"op":"frobnicate"}', "unknown request: unknown variant `frobnicate`"),
            ('{"key":"a"}', "unknown request: missing field `op`"),
            ('{"op":"get"}', "unknown request: missing field `key`"),
            ('{"op":"put","key":"a"}', "unknown request: missing field `value`"),
            ('{"op":"get","key":7}', "unknown request: invalid type: integer `7`"),
            ("[1]", "unknown request: invalid type: sequence"),
        ]
        for request, expected in cases:
            with self.subTest(request=request):
                with self.assertRaises(Error) as refused:
                    self.call(request)
                self.assertTrue(str(refused.exception).startswith(expected), str(refused.exception))

    def test_a_field_named_twice_is_refused_where_the_request_uses_it_as_rust_kv_refuses_it(self):
        self.started()
        refused = [
            ('{"op":"get","op":"get","key":"a"}', "unknown request: duplicate field `op`"),
            ('{"op":"get","key":"a","key":"b"}', "unknown request: duplicate field `key`"),
            ('{"key":"a","op":"get","\\u006bey":"b"}', "unknown request: duplicate field `key`"),
            ('{"op":"put","key":"a","value":1,"value":2}', "unknown request: duplicate field `value`"),
            ('{"x":"a\\\\","key":"a","op":"get","key":"b"}', "unknown request: duplicate field `key`"),
            ('["get","a"]', "unknown request: invalid type: sequence, expected internally tagged enum Request"),
        ]
        for request, expected in refused:
            with self.subTest(request=request):
                with self.assertRaises(Error) as refusal:
                    self.call(request)
                self.assertEqual(str(refusal.exception), expected)
        # A field the request does not use may come twice, as in Rust; so may a name inside a value.
        self.assertEqual(self.call('{"op":"count","key":"a","key":"b"}'), "0")
        self.assertEqual(self.call('{"op":"get","key":"a","value":1,"value":2}'), "null")
        self.assertEqual(self.call('{"x":"a\\",\\"key\\":1","op":"get","key":"a"}'), "null")
        self.assertEqual(self.call('{"x":[{"key":1},{"key":2}],"op":"get","key":"a"}'), "null")
        self.assertEqual(self.call('{"op":"put","key":"a","value":{"key":1,"key":2},"x":[{"op":1}]}'), "null")
        self.assertEqual(self.call('{"op":"get","key":"a"}'), '{"key":2}')

    def test_a_value_too_deep_for_a_state_to_read_back_is_refused_as_rust_kv_refuses_it(self):
        self.started()

        def put(levels):
            nested = "[" * (levels - 1) + "]" * (levels - 1)
            return '{"op":"put","key":"k","value":{"a":%s}}' % nested

        self.assertEqual(self.call(put(kv.MAX_VALUE_DEPTH)), "null")
        server = hotswap_guest.export(kv.Kv)()
        server.code_change(Change("upgrade", "0"), self.server.snapshot(), b"")
        self.assertEqual(server.snapshot(), self.server.snapshot())
        with self.assertRaises(Error) as refused:
            self.call(put(kv.MAX_VALUE_DEPTH + 1))
        self.assertEqual(
            str(refused.exception),
            "value nested too deep: a state keeps at most 125 levels of arrays and objects",
        )
        self.server.handle_cast(put(kv.MAX_VALUE_DEPTH + 1).encode())
        self.assertEqual(
            self.host.lines[-1],
            ("warn", "ignoring the cast: value nested too deep: a state keeps at most 125 levels of arrays and objects"),
        )
        # Many brackets, none deep: the bound says walk, and the walk finds nothing too deep.
        wide = '{"op":"put","key":"w","value":[%s]}' % ",".join(["[]"] * 300)
        self.assertEqual(self.call(wide), "null")

    def test_casts_apply_put_and_delete_and_ignore_the_rest(self):
        self.started()
        self.server.handle_cast(b'{"op":"put","key":"a","value":1}')
        self.server.handle_info(b'{"op":"put","key":"b","value":2}')
        self.server.handle_cast(b'{"op":"delete","key":"a"}')
        self.server.handle_cast(b'{"op":"keys"}')
        self.server.handle_info(b"nonsense")
        self.assertEqual(self.server.snapshot(), b'{"entries":{"b":2}}')
        warnings = [message for level, message in self.host.lines if level == "warn"]
        self.assertEqual(len(warnings), 2)
        self.assertIn("only put and delete apply without a reply", warnings[0])
        self.assertTrue(warnings[1].startswith("ignoring the info message: unknown request: not JSON"))

    def test_init_takes_nothing_null_or_a_state(self):
        for args in [b"", b" null ", b"{}", b'{"entries":{"a":1}}']:
            with self.subTest(args=args):
                server = hotswap_guest.export(kv.Kv)()
                server.init(args)
                self.assertIn(server.snapshot(), [b'{"entries":{}}', b'{"entries":{"a":1}}'])
        with self.assertRaisesRegex(Error, r"^bad init arguments"):
            hotswap_guest.export(kv.Kv)().init(b"[1]")

    def test_code_change_adopts_a_rust_state_and_refuses_garbage(self):
        self.server.code_change(Change("upgrade", "0"), b'{"entries":{"b":"x","a":42}}', b"")
        self.assertEqual(self.call('{"op":"get","key":"a"}'), "42")
        self.assertEqual(self.server.snapshot(), b'{"entries":{"a":42,"b":"x"}}')
        for blob, why in [(b"{x", "not JSON"), (b"[1]", "invalid type: sequence"),
                          (b'{"other":1}', "missing field `entries`"),
                          (b'{"entries":[1]}', "invalid type: sequence, expected a map")]:
            with self.subTest(blob=blob):
                with self.assertRaises(Error) as refused:
                    hotswap_guest.export(kv.Kv)().code_change(Change("downgrade", "2"), blob, b"")
                message = str(refused.exception)
                self.assertTrue(message.startswith('downgrade from vsn "2" to vsn "py-1": the state does not parse: '), message)
                self.assertIn(why, message)

    def test_callbacks_out_of_order_are_errors(self):
        with self.assertRaisesRegex(Error, "has no state"):
            self.call('{"op":"count"}')
        self.started()
        with self.assertRaisesRegex(Error, "already has a state"):
            self.server.init(b"")

    def test_crash_aborts(self):
        self.started()
        with mock.patch.object(os, "abort", side_effect=SystemExit("aborted")) as abort:
            with self.assertRaises(SystemExit):
                self.call('{"op":"crash"}')
        abort.assert_called_once()

    def test_vsn(self):
        self.assertEqual(self.server.vsn(), "py-1")


if __name__ == "__main__":
    unittest.main()
