// A stand-in for the host API (`hotswap:otp/runtime@0.1.0`), so the helper and kv run on node in
// the unit tests: it records the log lines instead of sending them to a node.
export const lines = [];

export function log(level, message) {
  lines.push([level, message]);
}
export const selfPid = () => 7n;
export const whereis = () => undefined;
export function send() {}
export const sendAfter = () => 1n;
export const cancelTimer = () => false;
