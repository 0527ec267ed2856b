// The seed's key-value server in JavaScript, vsn "js-1": the same requests, replies and state as
// the Rust kv (guests/rust/kv-core), so a running kv process hot swaps from any version in any
// language to this one and back. Like Rust kv v1 it logs one info line per get and put.
//
//   {"op":"put","key":"a","value":42}   -> the previous value, or null
//   {"op":"get","key":"a"}              -> the value, or null
//   {"op":"delete","key":"a"}           -> the removed value, or null
//   {"op":"keys"}                       -> the keys, sorted
//   {"op":"count"}                      -> the number of keys
//   {"op":"crash"}                      -> no reply: traps (for the host's tests)
//
// Anything else is the error `unknown request: <what was wrong>`. A put whose value nests more
// than MAX_VALUE_DEPTH arrays and objects is refused (`value nested too deep: ...`): the state
// holding it could not be read back, here or in any other language. As a cast or an info message,
// put and delete apply without a reply; anything else is logged at warn and ignored. The state
// is `{"entries":{...}}`, keys sorted, byte for byte what the Rust kv writes.
//
// Built by scripts/build-polyglot-guests.sh into guests/out/kv_js.wasm.

import { GenServer, GuestError, exportServer, describe, info, warn, json } from './hotswap-guest.js';

const OPS = ['put', 'get', 'delete', 'keys', 'count'];
const INIT_HINT = 'bad init arguments (want nothing, null or {"entries":{...}})';

export class Kv extends GenServer {
  static vsn = 'js-1';

  init(args) {
    if (args.every((byte) => ' \t\n\r\f'.includes(String.fromCharCode(byte)))) return { entries: Object.create(null) };
    try {
      const value = json.decode(args);
      if (value === null) return { entries: Object.create(null) };
      if (!isObject(value)) throw new GuestError(`invalid type: ${kind(value)}, expected an object`);
      return { entries: entriesOf(Object.hasOwn(value, 'entries') ? value.entries : {}) };
    } catch (why) {
      throw new GuestError(`${INIT_HINT}: ${why.message}`);
    }
  }

  handleCall(request, caller) {
    if (isCrash(request)) crash(caller);
    return json.encode(this.serve(parse(request)));
  }

  handleCast(message) {
    this.handleMessage('cast', message);
  }

  handleInfo(message) {
    this.handleMessage('info message', message);
  }

  codeChange(change, state, extra) {
    try {
      const value = json.decode(state);
      if (!isObject(value)) throw new GuestError(`invalid type: ${kind(value)}, expected struct Entries`);
      if (!Object.hasOwn(value, 'entries')) throw new GuestError('missing field `entries`');
      return { entries: entriesOf(value.entries) };
    } catch (why) {
      throw new GuestError(this.refusal(change, `the state does not parse: ${why.message}`));
    }
  }

  /** A cast or an info message: put and delete apply, anything else is logged. */
  handleMessage(what, message) {
    let request;
    try {
      request = parse(message);
    } catch (why) {
      if (!(why instanceof GuestError)) throw why;
      warn(`ignoring the ${what}: ${why.message}`);
      return;
    }
    if (request.op === 'put' || request.op === 'delete') this.serve(request);
    else warn(`ignoring the ${what} ${describe(message)}: only put and delete apply without a reply`);
  }

  /** Carries out a parsed request and returns the reply, logging gets and puts. */
  serve({ op, key, value }) {
    const entries = this.state.entries;
    switch (op) {
      case 'put': {
        info(`put ${key} = ${json.toText(value)}`);
        const previous = entries[key] ?? null;
        entries[key] = value;
        return previous;
      }
      case 'get': {
        const found = entries[key] ?? null;
        info(`get ${key} -> ${json.toText(found)}`);
        return found;
      }
      case 'delete': {
        const removed = entries[key] ?? null;
        delete entries[key];
        return removed;
      }
      case 'keys': {
        const keys = Object.keys(entries);
        json.sortKeys(keys);
        return keys;
      }
      default:
        return Object.keys(entries).length;
    }
  }
}

/** `{op, key, value}`, or GuestError("unknown request: ...") naming what was wrong, in the
 * Rust kv's words. */
export function parse(request) {
  const fail = (why) => {
    throw new GuestError(`unknown request: ${why}`);
  };
  let value;
  try {
    value = json.decode(request);
  } catch (why) {
    fail(why.message);
  }
  if (!isObject(value)) fail(`invalid type: ${kind(value)}, expected internally tagged enum Request`);
  const twice = namedTwice(request);
  if (twice.has('op')) fail('duplicate field `op`');
  if (!Object.hasOwn(value, 'op')) fail('missing field `op`');
  const { op } = value;
  if (typeof op !== 'string') fail(`invalid type: ${kind(op)}, expected variant identifier`);
  if (!OPS.includes(op)) fail(`unknown variant \`${op}\`, expected one of ${OPS.map((name) => `\`${name}\``).join(', ')}`);
  if (op === 'keys' || op === 'count') return { op };
  if (twice.has('key')) fail('duplicate field `key`');
  if (!Object.hasOwn(value, 'key')) fail('missing field `key`');
  if (typeof value.key !== 'string') fail(`invalid type: ${kind(value.key)}, expected a string`);
  if (op !== 'put') return { op, key: value.key };
  if (twice.has('value')) fail('duplicate field `value`');
  if (!Object.hasOwn(value, 'value')) fail('missing field `value`');
  // Counting brackets (native searches) bounds the depth from above: most puts need no walk.
  if (brackets(request) > MAX_VALUE_DEPTH && depth(value.value) > MAX_VALUE_DEPTH) throw new GuestError(TOO_DEEP);
  return { op, key: value.key, value: value.value };
}

const FIELDS = ['op', 'key', 'value'];

/** Which of the request's fields (`op`, `key`, `value`) its object names more than once. An
 * object keeps the last; the Rust kv refuses the request (serde's `duplicate field`), and so
 * does this one. `request` is known to be a JSON object. Without a `\\` (an escape could spell
 * a name) and with each name written once at most, nothing is named twice. */
function namedTwice(request) {
  // Decoded and searched natively: a loop over the bytes in JavaScript was 5-30x slower on a
  // large put of many strings (measured in review, with and without a JIT).
  const text = new TextDecoder().decode(request);
  const once = (name) => {
    const at = text.indexOf(`"${name}"`);
    return at === -1 || text.indexOf(`"${name}"`, at + 1) === -1;
  };
  if (!text.includes('\\') && FIELDS.every(once)) return new Set();
  const seen = new Set();
  const twice = new Set();
  let depth = 0;
  let atName = false;
  for (let at = 0; at < text.length; at += 1) {
    const c = text[at];
    if (c === '"') {
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (atName) {
        const name = JSON.parse(text.slice(at, end + 1));
        if (seen.has(name)) twice.add(name);
        seen.add(name);
      }
      atName = false;
      at = end;
    } else if (c === '{' || c === '[') {
      depth += 1;
      atName = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth -= 1;
    } else if (c === ',') {
      atName = depth === 1;
    }
  }
  return new Set(FIELDS.filter((name) => twice.has(name)));
}

/** serde_json reads 127 levels; a state holds each value two levels down (kv-core's
 * MAX_VALUE_DEPTH): a deeper value could be put, but its state could never be read back. */
export const MAX_VALUE_DEPTH = 125;
const TOO_DEEP = `value nested too deep: a state keeps at most ${MAX_VALUE_DEPTH} levels of arrays and objects`;

/** How many `[` and `{` the request's bytes hold, up to one more than MAX_VALUE_DEPTH. */
function brackets(bytes) {
  let count = 0;
  for (const open of [0x5b, 0x7b]) {
    for (let at = bytes.indexOf(open); at !== -1 && count <= MAX_VALUE_DEPTH; at = bytes.indexOf(open, at + 1)) count += 1;
  }
  return count;
}

/** How many arrays and objects `value` nests in one another: 0 for anything else. */
function depth(value) {
  let deepest = 0;
  const pending = [value, 0];
  while (pending.length) {
    const level = pending.pop();
    const item = pending.pop();
    if (Array.isArray(item) || isObject(item)) {
      deepest = Math.max(deepest, level + 1);
      for (const inner of Object.values(item)) pending.push(inner, level + 1);
    }
  }
  return deepest;
}

/** The entries: an object without a prototype, so that any key ("__proto__", "toString") is
 * data like any other. Not a Map: the engine lists an object's keys at once, where a Map's are
 * iterated one by one, which was a third of a 1 MiB snapshot. `value` is freshly decoded: it
 * becomes the entries as it is. */
function entriesOf(value) {
  if (!isObject(value)) throw new GuestError(`invalid type: ${kind(value)}, expected a map`);
  return Object.setPrototypeOf(value, null);
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof json.JsonFloat);
}

/** What a JSON value is, in serde's words (`integer \`7\``, `sequence`, ...). */
function kind(value) {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return `boolean \`${value}\``;
  if (typeof value === 'number' && Number.isInteger(value)) return `integer \`${value}\``;
  if (typeof value === 'bigint') return `integer \`${value}\``;
  if (typeof value === 'number' || value instanceof json.JsonFloat) return `floating point \`${json.toText(value)}\``;
  if (typeof value === 'string') return `string ${json.toText(value)}`;
  return Array.isArray(value) ? 'sequence' : 'map';
}

function isCrash(request) {
  try {
    const value = json.decode(request);
    return isObject(value) && value.op === 'crash';
  } catch {
    return false;
  }
}

/** Traps on purpose, so the host's tests can check that a trap in a JavaScript guest kills this
 * process only: an Error thrown out of a callback (anything but GuestError) is a trap. */
function crash(caller) {
  throw new Error(`kv js-1 traps on purpose: {"op":"crash"} from pid ${caller}`);
}

export const server = exportServer(Kv);
