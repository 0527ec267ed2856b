// The JavaScript guest helper of hotswap: write a process as a `GenServer` subclass, export it
// with `exportServer`, and componentize-js makes it a component of the `hotswap:otp/process`
// world that a hotswap node spawns and hot swaps, like a Rust guest.
//
// It is the JavaScript twin of the Rust SDK (guests/rust/sdk): the node calls the `server`
// exports one at a time; this module keeps the state between calls (in `this.state`), turns it
// into JSON for a hot swap (`snapshot`) and back (`codeChange`), and turns `GuestError` into the
// WIT `err`, so a guest writes only its callbacks:
//
//     import { GenServer, exportServer, json } from './hotswap-guest.js';
//
//     class Counter extends GenServer {
//       static vsn = '1';
//       init(args) { return 0; }                       // the first state
//       handleCall(request, caller) { this.state += 1; return json.encode(this.state); }
//     }
//
//     export const server = exportServer(Counter);    // the name componentize-js looks for
//
// Throw `new GuestError('why')` for a caller's mistake: the caller gets the error and the process
// lives on. Any other exception traps, and a trap kills the process (as a panic does in Rust).
// Payloads are Uint8Arrays; pids are BigInts (WIT u64).

import * as runtime from 'hotswap:otp/runtime@0.1.0';
import * as json from './json.js';

export { json };

/** Thrown by a callback to return an error to the node instead of trapping: the caller of
 * `handleCall` gets it as the reply, a refused `init` aborts the spawn, a refused `codeChange`
 * leaves the old version serving. */
export class GuestError extends Error {}

/** Which way a code change goes (`'upgrade'` or `'downgrade'`) and the version being left. */
export class Change {
  constructor(direction, vsn) {
    this.direction = direction;
    this.vsn = vsn;
  }
  toString() {
    return `${this.direction} from vsn ${json.toText(this.vsn)}`;
  }
}

/** A gen_server: a state (`this.state`) and the callbacks that act on it. Only `static vsn`,
 * `init` and `handleCall` are required; the other callbacks have defaults that suit a server
 * whose state is JSON and which ignores casts and info messages. */
export class GenServer {
  /** This version's name, as the node reports it (`'1'`, `'js-1'`). */
  static vsn = '';

  /** Returns the state of a freshly spawned process, from its spawn arguments (bytes).
   * Throw GuestError to abort the spawn. Not called on a hot swap. */
  init(args) {
    throw new GuestError('init is not written');
  }

  /** Answers a request (bytes) from `caller` (a BigInt pid, 0n when outside the node) with the
   * reply's bytes. Throw GuestError to reply with an error; the process lives on. */
  handleCall(request, caller) {
    throw new GuestError('handleCall is not written');
  }

  /** Handles an asynchronous request. The default logs it at warn and ignores it. */
  handleCast(message) {
    warn(`ignoring a cast: ${describe(message)}`);
  }

  /** Handles any other message (`send`, timers). The default logs it and ignores it. */
  handleInfo(message) {
    warn(`ignoring an info message: ${describe(message)}`);
  }

  /** Called when the process is stopped on purpose. The default does nothing. */
  terminate(reason) {}

  /** The state as bytes for a hot swap; must not change it. The default is JSON in
   * serde_json's form, so that any language's version can read it. */
  snapshot() {
    return json.encode(this.state);
  }

  /** Returns the state to adopt from `state` (bytes), which the version being left wrote, on
   * a fresh instance (instead of `init`). The default adopts any JSON state as it is; override
   * it to check or migrate the shape. Throw GuestError to refuse the change. */
  codeChange(change, state, extra) {
    try {
      return json.decode(state);
    } catch (why) {
      if (why instanceof json.JsonError) throw new GuestError(this.refusal(change, `the state does not parse: ${why.message}`));
      throw why;
    }
  }

  /** The message of a refused code change, as the Rust SDK words it. */
  refusal(change, why) {
    return `${change} to vsn ${json.toText(this.constructor.vsn)}: ${why}`;
  }
}

/** `bytes` as text for a log line: UTF-8 (invalid bytes replaced), cut after `limit` characters. */
export function describe(bytes, limit = 200) {
  const text = new TextDecoder().decode(bytes);
  return text.length <= limit ? text : `${text.slice(0, limit)}... (${bytes.length} bytes)`;
}

/** The object that componentize-js exports as `hotswap:otp/server`: assign it to `server`
 * (`export const server = exportServer(MyServer)`). It makes one `new ServerClass()` and keeps
 * it for the life of the instance. */
export function exportServer(ServerClass) {
  if (!(ServerClass.prototype instanceof GenServer)) throw new TypeError('exportServer takes a GenServer subclass');
  if (!ServerClass.vsn) throw new TypeError(`${ServerClass.name}.vsn must name the version`);
  const server = new ServerClass();
  let started = false; // true once init or codeChange has given the server a state

  // Runs a callback: a GuestError (or a JsonError the callback let through, like `?` in Rust)
  // becomes the WIT `err`, since componentize-js turns a thrown string into `err`; anything
  // else is logged and rethrown as an Error object, which traps.
  const guarded = (callback, run) => {
    try {
      return run();
    } catch (why) {
      if (why instanceof GuestError || why instanceof json.JsonError) throw why.message;
      const where = String(why?.stack ?? '').split('\n')[0];
      runtime.log('error', `${callback} threw ${why}${where ? ` at ${where}` : ''}: the process traps`);
      throw why instanceof Error ? why : new Error(String(why));
    }
  };
  const start = (callback, make) => guarded(callback, () => {
    if (started) throw new GuestError(`${callback} called on a process that already has a state`);
    server.state = make();
    started = true;
  });
  const running = (callback) => {
    if (!started) throw new GuestError(`${callback} called on a process that has no state: init or code-change must come first`);
  };

  return {
    init: (args) => start('init', () => server.init(args)),
    handleCall: (request, caller) => guarded('handle-call', () => {
      running('handle-call');
      return bytes(server.handleCall(request, caller), 'handle-call');
    }),
    handleCast: (message) => guarded('handle-cast', () => {
      if (started) server.handleCast(message);
      else error('handle-cast called on a process that has no state');
    }),
    handleInfo: (message) => guarded('handle-info', () => {
      if (started) server.handleInfo(message);
      else error('handle-info called on a process that has no state');
    }),
    terminate: (reason) => guarded('terminate', () => {
      if (!started) return;
      server.terminate(reason);
      started = false;
      server.state = undefined;
    }),
    snapshot: () => guarded('snapshot', () => {
      running('snapshot');
      return bytes(server.snapshot(), 'snapshot');
    }),
    codeChange: (direction, state, extra) =>
      start('code-change', () => server.codeChange(new Change(direction.tag, direction.val), state, extra)),
    vsn: () => ServerClass.vsn,
  };
}

function bytes(reply, callback) {
  if (reply instanceof Uint8Array) return reply;
  if (typeof reply === 'string') return new TextEncoder().encode(reply);
  throw new Error(`${callback} must return a Uint8Array or a string, not ${typeof reply}`);
}

// The host API (`interface runtime`), as plain functions.

/** Writes `message` to the node's log at `level` ('trace' ... 'error'); the node tags it with
 * this process's pid, module and vsn. */
export function log(level, message) {
  runtime.log(level, message);
}
export const trace = (message) => log('trace', message);
export const debug = (message) => log('debug', message);
export const info = (message) => log('info', message);
export const warn = (message) => log('warn', message);
export const error = (message) => log('error', message);

/** This process's pid (a BigInt), stable across hot swaps. */
export const selfPid = () => runtime.selfPid();

/** The pid registered under `name`, or undefined. */
export const whereis = (name) => runtime.whereis(name);

/** Sends `message` (bytes) to `to`'s handleInfo. Throws GuestError if `to` is gone or full. */
export function send(to, message) {
  try {
    runtime.send(BigInt(to), message);
  } catch (why) {
    throw new GuestError(String(why?.payload ?? why?.message ?? why));
  }
}

/** Sends `message` to `to` after `millis` ms; returns a timer (BigInt) for cancelTimer. */
export const sendAfter = (to, message, millis) => runtime.sendAfter(BigInt(to), message, BigInt(millis));

/** Cancels a timer; true if it was pending and will now never fire. */
export const cancelTimer = (timer) => runtime.cancelTimer(BigInt(timer));
