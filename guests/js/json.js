// JSON as the Rust guests write it: `decode` and `encode` payloads and states so that a state
// written here is byte for byte what Rust's serde_json writes for the same content, and no value
// is changed on its way through a JavaScript version of a module.
//
// Why not JSON.parse / JSON.stringify: they lose what serde_json keeps. `1.0` would come back as
// `1`, an id such as 2^60+1 would be rounded to a double, object keys would stay in insertion
// order, and floats would use JS's notation (`1e21` as `1e+21` but `1e16` as `10000000000000000`,
// where serde_json writes `1e+16`). So this module reads and writes JSON itself:
//
// - an integer literal is a Number when it is safe (|n| <= 2^53), a BigInt when it needs 64 bits
//   (i64 or u64, as serde_json), a float beyond that;
// - a literal with a fraction or an exponent is a float: a plain Number when it is not whole, a
//   `JsonFloat` (which acts as a number through valueOf) when it is, so `1.0` stays `1.0`;
// - objects decode to plain objects and encode with their keys sorted (serde_json keeps a
//   BTreeMap); a Map with string keys encodes as an object too;
// - errors use serde_json's words (`expected value at line 1 column 1`), prefixed `not JSON: `.
//
// Reading and writing character by character in an interpreter is slow: a megabyte of state
// took two seconds each way, past a swap's default time limit. So both directions hand the
// common case to the engine's own JSON.parse and JSON.stringify and sort, each time only when
// the text or the value is one where they give exactly what this module would (see
// `parsedNatively`, `quote` and `writeObject`), and keep the exact code for the rest.

/** serde_json refuses more than 127 nested arrays or objects. */
export const MAX_DEPTH = 127;

/** A float literal: a digit followed by a fraction or an exponent. Looked for in strings too
 * (a version "1.2", a hex id "3e9a"), so it only decides when the text is not the engine's own
 * writing of its value (see `parsedNatively`). The engine finds this pattern quickly, where
 * `[0-9]{16}`, for integers past 2^53, took a quarter of a second on a megabyte: those are
 * checked on the parsed value instead. */
const FLOAT_LITERAL = /[0-9][.eE]/;

/** An escaped surrogate, which may be a lone one: serde_json refuses those, JSON.parse does not. */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

/** A UTF-16 surrogate: in a key, it orders otherwise than JS's `<`; in any string, it may be a
 * lone one, which JSON cannot hold. */
const SURROGATE = /[\ud800-\udfff]/;

const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A JSON float whose value is whole (`1.0`, `1e+20`): kept apart from integers so that it is
 * written back as a float. Arithmetic works on it through `valueOf`. */
export class JsonFloat {
  constructor(value) {
    this.value = Number(value);
  }
  valueOf() {
    return this.value;
  }
  toString() {
    return formatFloat(this.value);
  }
}

/** Bytes that are not JSON (`not JSON: ...`), or a value that JSON cannot hold. */
export class JsonError extends Error {}

/** Decodes UTF-8 JSON bytes (a Uint8Array) into null, booleans, numbers, BigInts, JsonFloats,
 * strings, arrays and plain objects. Throws JsonError for anything serde_json would refuse. */
export function decode(bytes) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new JsonError('not JSON: invalid UTF-8');
  }
  const value = parsedNatively(text);
  return value !== undefined ? value : new Parser(text).document();
}

/** `text` as JSON.parse reads it, when that is what `Parser` would return; `undefined` when it
 * might not be, and for text that is not JSON, so that the error keeps serde_json's words.
 * Exported for the tests, which check that ordinary documents take this way. */
export function parsedNatively(text) {
  if (text.includes('\\u') && ESCAPED_SURROGATE.test(text)) return undefined;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!nativeReadsExactly(value)) return undefined;
  // What is left is a whole number written as a float (`1.0`, `1e3`): a JsonFloat to `Parser`,
  // a plain integer to JSON.parse. There is none if the text is the engine's own writing of the
  // value (it writes a whole number below 1e21 without fraction or exponent, and one above is
  // no safe integer), nor if the text has no float literal at all.
  if (JSON.stringify(value) !== text && FLOAT_LITERAL.test(text)) return undefined;
  return value;
}

/** Whether JSON.parse's `value` is what `Parser` reads, but for whole numbers written as floats
 * (the caller's part): no number out of range, no -0 (a JsonFloat there), no integer past 2^53
 * (a BigInt there, or a JsonFloat), and no more than MAX_DEPTH arrays and objects nested
 * (serde_json's limit). A number with a fraction is the same double either way. */
function nativeReadsExactly(value) {
  const pending = [value, 0];
  while (pending.length) {
    const depth = pending.pop();
    const item = pending.pop();
    if (typeof item === 'number') {
      const wide = Number.isInteger(item) && !Number.isSafeInteger(item);
      if (!Number.isFinite(item) || Object.is(item, -0) || wide) return false;
    } else if (item !== null && typeof item === 'object') {
      if (depth >= MAX_DEPTH) return false;
      for (const key in item) pending.push(item[key], depth + 1);
    }
  }
  return true;
}

/** Encodes `value` as compact JSON bytes, exactly as serde_json writes a Value. */
export function encode(value) {
  return new TextEncoder().encode(toText(value));
}

/** `value` as JSON text, for a log line (`put a = 42`). */
export function toText(value) {
  const parts = [];
  write(value, parts);
  return parts.join('');
}

class Parser {
  constructor(text) {
    this.text = text;
    this.at = 0;
    this.depth = 0;
  }

  document() {
    this.space();
    const value = this.value();
    this.space();
    if (this.at < this.text.length) this.fail('trailing characters', this.at + 1);
    return value;
  }

  // `read`: how many characters were read when the error showed (serde_json's column).
  fail(what, read = this.at) {
    const before = this.text.slice(0, read);
    const line = before.split('\n').length;
    const column = read - (before.lastIndexOf('\n') + 1);
    throw new JsonError(`not JSON: ${what} at line ${line} column ${column}`);
  }

  space() {
    while (this.at < this.text.length && ' \t\n\r'.includes(this.text[this.at])) this.at += 1;
  }

  eof(what) {
    if (this.at >= this.text.length) this.fail(`EOF while parsing ${what}`);
  }

  value() {
    this.eof('a value');
    const c = this.text[this.at];
    if (c === '{' || c === '[') return this.nested(c);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, value] of [['null', null], ['true', true], ['false', false]]) {
      if (c === word[0]) {
        for (const letter of word) {
          this.eof('a value');
          if (this.text[this.at] !== letter) this.fail('expected ident', this.at + 1);
          this.at += 1;
        }
        return value;
      }
    }
    return this.fail('expected value', this.at + 1);
  }

  nested(open) {
    if (++this.depth > MAX_DEPTH) this.fail('recursion limit exceeded', this.at + 1);
    const array = open === '[';
    const close = array ? ']' : '}';
    const result = array ? [] : {};
    this.at += 1;
    this.space();
    this.eof(array ? 'a list' : 'an object');
    if (this.text[this.at] === close) {
      this.at += 1;
      this.depth -= 1;
      return result;
    }
    for (;;) {
      if (array) {
        result.push(this.value());
      } else {
        if (this.text[this.at] !== '"') this.fail('key must be a string', this.at + 1);
        const key = this.string();
        this.space();
        this.eof('an object');
        if (this.text[this.at] !== ':') this.fail('expected `:`', this.at + 1);
        this.at += 1;
        this.space();
        // defineProperty: a key such as "__proto__" is data here, never a prototype.
        Object.defineProperty(result, key, {
          value: this.value(),
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
      this.space();
      this.eof(array ? 'a list' : 'an object');
      const c = this.text[this.at];
      this.at += 1;
      if (c === close) break;
      if (c !== ',') this.fail(`expected \`,\` or \`${close}\``);
      this.space();
      if (this.text[this.at] === close) this.fail('trailing comma', this.at + 1);
      this.eof('a value');
    }
    this.depth -= 1;
    return result;
  }

  string() {
    this.at += 1; // the opening quote
    let out = '';
    for (;;) {
      this.eof('a string');
      const c = this.text[this.at];
      const code = c.charCodeAt(0);
      this.at += 1;
      if (c === '"') return out;
      if (code < 0x20) this.fail('control character (\\u0000-\\u001F) found while parsing a string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      this.eof('a string');
      const e = this.text[this.at];
      this.at += 1;
      const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e in simple) {
        out += simple[e];
      } else if (e === 'u') {
        const unit = this.hex();
        if (unit >= 0xdc00 && unit <= 0xdfff) this.fail('lone leading surrogate in hex escape');
        if (unit >= 0xd800 && unit <= 0xdbff) {
          if (this.text.slice(this.at, this.at + 2) !== '\\u') this.fail('unexpected end of hex escape', this.at + 1);
          this.at += 2;
          const low = this.hex();
          if (low < 0xdc00 || low > 0xdfff) this.fail('lone leading surrogate in hex escape');
          out += String.fromCharCode(unit, low);
        } else {
          out += String.fromCharCode(unit);
        }
      } else {
        this.fail('invalid escape');
      }
    }
  }

  hex() {
    const digits = this.text.slice(this.at, this.at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) {
      this.at += Math.min(4, this.text.length - this.at);
      this.fail(this.at >= this.text.length ? 'EOF while parsing a string' : 'invalid escape');
    }
    this.at += 4;
    return parseInt(digits, 16);
  }

  number() {
    const start = this.at;
    const digits = (what) => {
      this.eof('a value');
      if (!/[0-9]/.test(this.text[this.at])) this.fail(`invalid ${what}`, this.at + 1);
      while (/[0-9]/.test(this.text[this.at] ?? '')) this.at += 1;
    };
    let float = false;
    if (this.text[this.at] === '-') this.at += 1;
    if (this.text[this.at] === '0') {
      this.at += 1;
      if (/[0-9]/.test(this.text[this.at] ?? '')) this.fail('invalid number', this.at + 1);
    } else {
      digits('number');
    }
    if (this.text[this.at] === '.') {
      this.at += 1;
      digits('number');
      float = true;
    }
    if (/[eE]/.test(this.text[this.at] ?? '')) {
      this.at += 1;
      if (/[+-]/.test(this.text[this.at] ?? '')) this.at += 1;
      digits('number');
      float = true;
    }
    const lexeme = this.text.slice(start, this.at);
    if (!float) {
      if (lexeme === '-0') return new JsonFloat(-0); // serde_json reads `-0` as the float -0.0
      const big = BigInt(lexeme);
      if (big >= -SAFE && big <= SAFE) return Number(big);
      if (big >= I64_MIN && big <= U64_MAX) return big;
    }
    const number = Number(lexeme);
    if (!Number.isFinite(number)) this.fail('number out of range');
    return Number.isInteger(number) ? new JsonFloat(number) : number;
  }
}

function write(value, parts) {
  if (value === null || value === undefined) {
    parts.push('null');
  } else if (typeof value === 'boolean') {
    parts.push(value ? 'true' : 'false');
  } else if (typeof value === 'number') {
    parts.push(formatNumber(value));
  } else if (typeof value === 'bigint') {
    parts.push(value >= I64_MIN && value <= U64_MAX ? value.toString() : formatFloat(Number(value)));
  } else if (value instanceof JsonFloat) {
    parts.push(formatFloat(value.value));
  } else if (typeof value === 'string') {
    parts.push(quote(value));
  } else if (Array.isArray(value)) {
    parts.push('[');
    value.forEach((item, index) => {
      if (index) parts.push(',');
      write(item, parts);
    });
    parts.push(']');
  } else if (value instanceof Map || (typeof value === 'object' && !ArrayBuffer.isView(value))) {
    writeObject(value, parts);
  } else {
    throw new JsonError(`cannot encode as JSON: ${typeof value} is not a JSON value`);
  }
}

/** A Map with string keys, or an object (plain or without a prototype), as a JSON object with
 * its keys in Rust's order. A large state is mostly this loop: it does as little as it can per
 * entry (an object's keys come from the engine at once; a Map's must be iterated). */
function writeObject(value, parts) {
  const map = value instanceof Map;
  const keys = map ? [...value.keys()] : Object.keys(value);
  if (map) {
    for (const key of keys) {
      if (typeof key !== 'string') throw new JsonError(`cannot encode as JSON: key must be a string, not ${typeof key}`);
    }
  }
  // Without a surrogate, no key is a lone one: JSON.stringify quotes them as `quote` would.
  const quoteKey = sortKeys(keys) ? JSON.stringify : quote;
  parts.push('{');
  for (let index = 0; index < keys.length; index += 1) {
    const key = keys[index];
    const item = map ? value.get(key) : value[key];
    parts.push(index ? ',' : '', quoteKey(key), ':');
    if (typeof item === 'number' && Number.isSafeInteger(item) && !Object.is(item, -0)) parts.push(String(item));
    else write(item, parts);
  }
  parts.push('}');
}

/** Sorts `keys` (strings) in place as Rust orders them, and says whether none holds a surrogate.
 * Then JS's order of UTF-16 units is Rust's order of code points, and the engine's own sort
 * does it, at once; otherwise `compareKeys` does, one comparison at a time. */
export function sortKeys(keys) {
  const plain = !SURROGATE.test(keys.join(''));
  if (plain) keys.sort();
  else keys.sort(compareKeys);
  return plain;
}

/** Orders strings as Rust orders them: by UTF-8 bytes, that is by code points (JS's `<`
 * compares UTF-16 units, which puts U+10000.. before U+E000..U+FFFF). */
export function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit) {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000; // surrogates: above U+FFFF
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

const SHORT_ESCAPES = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function quote(text) {
  // JSON.stringify escapes what serde_json escapes (`"`, `\` and U+0000..U+001F, in the same
  // short or `\u00xx` forms), and differs only on lone surrogates.
  if (!SURROGATE.test(text)) return JSON.stringify(text);
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    throw new JsonError('cannot encode as JSON: a string holds a lone surrogate');
  }
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/["\\\u0000-\u001f]/g, (c) =>
    SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${escaped}"`;
}

/** A Number as serde_json writes it: whole numbers that fit in i64 or u64 as integers (an
 * integer in Rust), anything else as a float. */
function formatNumber(number) {
  // Up to 2^53 a Number's own digits are the integer's.
  if (Number.isSafeInteger(number) && !Object.is(number, -0)) return String(number);
  if (Number.isInteger(number) && !Object.is(number, -0)) {
    const big = BigInt(number);
    if (big >= I64_MIN && big <= U64_MAX) return big.toString();
  }
  return formatFloat(number);
}

/** A float as serde_json writes an f64: the shortest digits that read back to it, in plain
 * notation when the decimal exponent is within -5..=15, else `d.ddde±x`; a whole number keeps
 * `.0`. Not finite: `null`. */
export function formatFloat(number) {
  if (!Number.isFinite(number)) return 'null';
  const sign = number < 0 || Object.is(number, -0) ? '-' : '';
  if (number === 0) return `${sign}0.0`;
  // toExponential() with no argument gives the shortest digits that identify the number.
  const [mantissa, exp] = Math.abs(number).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const scientific = Number(exp);
  if (scientific >= -5 && scientific <= 15) {
    const point = scientific + 1; // digits before the decimal point
    if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  return `${sign}${mantissa}e${scientific > 0 ? '+' : '-'}${Math.abs(scientific)}`;
}
