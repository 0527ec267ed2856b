// The JavaScript kv (kv.js) through the exports that componentize-js calls, on node with a fake
// host (register.js): the same replies, errors, log lines and state as the Rust kv, errors as
// thrown strings (the WIT `err`) and a crash as a thrown Error (a trap in the component).
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { exportServer } from '../hotswap-guest.js';
import { Kv, MAX_VALUE_DEPTH } from '../kv.js';
import { lines } from './fake-runtime.js';

const bytes = (text) => new TextEncoder().encode(text);
const text = (data) => new TextDecoder().decode(data);
let server;

const call = (request) => text(server.handleCall(bytes(request), 0n));
// What the component's caller gets for an error: componentize-js turns a thrown string into `err`.
const refusal = (run) => {
  try {
    run();
  } catch (thrown) {
    assert.equal(typeof thrown, 'string', `a string (an err), not ${thrown}`);
    return thrown;
  }
  assert.fail('no error');
};

beforeEach(() => {
  lines.length = 0;
  server = exportServer(Kv);
});

test('put, get and delete reply with the value before', () => {
  server.init(bytes(''));
  assert.equal(call('{"op":"get","key":"a"}'), 'null');
  assert.equal(call('{"op":"put","key":"a","value":42}'), 'null');
  assert.equal(call('{"op":"put","key":"a","value":[1.0]}'), '42');
  assert.equal(call('{"op":"get","key":"a"}'), '[1.0]');
  assert.equal(call('{"op":"delete","key":"a"}'), '[1.0]');
  assert.equal(call('{"op":"delete","key":"a"}'), 'null');
  assert.equal(call('{"op":"count"}'), '0');
});

test('any key is data, even one named like a property of every object', () => {
  server.init(bytes(''));
  for (const key of ['__proto__', 'toString', 'constructor', '10', '9']) {
    assert.equal(call(`{"op":"get","key":"${key}"}`), 'null', key);
    assert.equal(call(`{"op":"put","key":"${key}","value":"${key}!"}`), 'null', key);
  }
  assert.equal(call('{"op":"get","key":"__proto__"}'), '"__proto__!"');
  assert.equal(call('{"op":"keys"}'), '["10","9","__proto__","constructor","toString"]');
  assert.equal(call('{"op":"count"}'), '5');
  const state = '{"entries":{"10":"10!","9":"9!","__proto__":"__proto__!","constructor":"constructor!","toString":"toString!"}}';
  assert.equal(text(server.snapshot()), state);
  assert.equal(call('{"op":"delete","key":"toString"}'), '"toString!"');
  assert.equal(call('{"op":"get","key":"toString"}'), 'null');
  // And the same through a swap: the new instance keeps them as data.
  server = exportServer(Kv);
  server.codeChange({ tag: 'upgrade', val: 'js-1' }, bytes(state), bytes(''));
  assert.equal(call('{"op":"get","key":"__proto__"}'), '"__proto__!"');
  assert.equal(call('{"op":"get","key":"hasOwnProperty"}'), 'null');
  assert.equal(text(server.snapshot()), state);
});

test('keys are sorted and the state is entries', () => {
  server.init(bytes(''));
  for (const key of ['b', 'c', 'a']) call(`{"op":"put","key":"${key}","value":true}`);
  assert.equal(call('{"op":"keys"}'), '["a","b","c"]');
  assert.equal(call('{"op":"count"}'), '3');
  assert.equal(text(server.snapshot()), '{"entries":{"a":true,"b":true,"c":true}}');
});

test('gets and puts are logged like Rust kv v1', () => {
  server.init(bytes(''));
  call('{"op":"put","key":"a","value":42}');
  call('{"op":"get","key":"a"}');
  assert.deepEqual(lines, [['info', 'put a = 42'], ['info', 'get a -> 42']]);
});

test('unknown requests name what was wrong', () => {
  server.init(bytes(''));
  const cases = [
    ['put a 1', 'unknown request: not JSON: expected value at line 1 column 1'],
    ['{"op":"frobnicate"}', 'unknown request: unknown variant `frobnicate`'],
    ['{"key":"a"}', 'unknown request: missing field `op`'],
    ['{"op":"get"}', 'unknown request: missing field `key`'],
    ['{"op":"put","key":"a"}', 'unknown request: missing field `value`'],
    ['{"op":"get","key":7}', 'unknown request: invalid type: integer `7`'],
    ['[1]', 'unknown request: invalid type: sequence'],
  ];
  for (const [request, expected] of cases) {
    const error = refusal(() => call(request));
    assert.ok(error.startsWith(expected), `${request}: ${error}`);
  }
});

test('a field named twice is refused where the request uses it, as the Rust kv refuses it', () => {
  server.init(bytes(''));
  const refused = [
    ['{"op":"get","op":"get","key":"a"}', 'unknown request: duplicate field `op`'],
    ['{"op":"get","key":"a","key":"b"}', 'unknown request: duplicate field `key`'],
    ['{"key":"a","op":"get","\\u006bey":"b"}', 'unknown request: duplicate field `key`'],
    ['{"op":"put","key":"a","value":1,"value":2}', 'unknown request: duplicate field `value`'],
    ['{"x":"a\\\\","key":"a","op":"get","key":"b"}', 'unknown request: duplicate field `key`'],
    ['["get","a"]', 'unknown request: invalid type: sequence, expected internally tagged enum Request'],
  ];
  for (const [request, expected] of refused) assert.equal(refusal(() => call(request)), expected, request);
  // A field the request does not use may come twice, as in Rust; so may a name inside a value.
  assert.equal(call('{"op":"count","key":"a","key":"b"}'), '0');
  assert.equal(call('{"op":"get","key":"a","value":1,"value":2}'), 'null');
  assert.equal(call('{"x":"a\\",\\"key\\":1","op":"get","key":"a"}'), 'null');
  assert.equal(call('{"x":[{"key":1},{"key":2}],"op":"get","key":"a"}'), 'null');
  assert.equal(call('{"op":"put","key":"a","value":{"key":1,"key":2},"x":[{"op":1}]}'), 'null');
  assert.equal(call('{"op":"get","key":"a"}'), '{"key":2}');
});

test('casts apply put and delete and ignore the rest', () => {
  server.init(bytes(''));
  server.handleCast(bytes('{"op":"put","key":"a","value":1}'));
  server.handleInfo(bytes('{"op":"put","key":"b","value":2}'));
  server.handleCast(bytes('{"op":"delete","key":"a"}'));
  server.handleCast(bytes('{"op":"keys"}'));
  server.handleInfo(bytes('nonsense'));
  assert.equal(text(server.snapshot()), '{"entries":{"b":2}}');
  const warnings = lines.filter(([level]) => level === 'warn').map(([, message]) => message);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /only put and delete apply without a reply/);
  assert.match(warnings[1], /^ignoring the info message: unknown request: not JSON/);
});

test('init takes nothing, null or a state', () => {
  for (const args of ['', ' null ', '{}', '{"entries":{"a":1}}']) {
    const fresh = exportServer(Kv);
    fresh.init(bytes(args));
    assert.ok(['{"entries":{}}', '{"entries":{"a":1}}'].includes(text(fresh.snapshot())));
  }
  assert.match(refusal(() => exportServer(Kv).init(bytes('[1]'))), /^bad init arguments/);
});

test('a value too deep for a state to read back is refused, as Rust kv refuses it', () => {
  server.init(bytes(''));
  const put = (levels) => `{"op":"put","key":"k","value":{"a":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}}`;
  assert.equal(call(put(MAX_VALUE_DEPTH)), 'null');
  const adopting = exportServer(Kv);
  adopting.codeChange({ tag: 'upgrade', val: '0' }, server.snapshot(), bytes(''));
  assert.equal(text(adopting.snapshot()), text(server.snapshot()));
  assert.equal(refusal(() => call(put(MAX_VALUE_DEPTH + 1))),
    'value nested too deep: a state keeps at most 125 levels of arrays and objects');
  server.handleCast(bytes(put(MAX_VALUE_DEPTH + 1)));
  assert.deepEqual(lines.at(-1),
    ['warn', 'ignoring the cast: value nested too deep: a state keeps at most 125 levels of arrays and objects']);
  // Many brackets, none deep: the bound says walk, and the walk finds nothing too deep.
  assert.equal(call(`{"op":"put","key":"w","value":[${Array(300).fill('[]').join(',')}]}`), 'null');
});

test('code change adopts a Rust state and refuses garbage', () => {
  server.codeChange({ tag: 'upgrade', val: '0' }, bytes('{"entries":{"b":"x","a":42}}'), bytes(''));
  assert.equal(call('{"op":"get","key":"a"}'), '42');
  assert.equal(text(server.snapshot()), '{"entries":{"a":42,"b":"x"}}');
  const cases = [['{x', 'not JSON'], ['[1]', 'invalid type: sequence'], ['{"other":1}', 'missing field `entries`'],
    ['{"entries":[1]}', 'invalid type: sequence, expected a map']];
  for (const [blob, why] of cases) {
    const error = refusal(() => exportServer(Kv).codeChange({ tag: 'downgrade', val: '2' }, bytes(blob), bytes('')));
    assert.ok(error.startsWith('downgrade from vsn "2" to vsn "js-1": the state does not parse: '), error);
    assert.ok(error.includes(why), error);
  }
});

test('callbacks out of order are errors', () => {
  assert.match(refusal(() => call('{"op":"count"}')), /has no state/);
  server.init(bytes(''));
  assert.match(refusal(() => server.init(bytes(''))), /already has a state/);
});

test('crash throws an Error object, which traps in the component', () => {
  server.init(bytes(''));
  assert.throws(() => call('{"op":"crash"}'), (error) => error instanceof Error && /traps on purpose/.test(error.message));
  assert.match(lines.at(-1)[1], /^handle-call threw Error: kv js-1 traps on purpose/);
});

test('vsn', () => {
  assert.equal(server.vsn(), 'js-1');
});
