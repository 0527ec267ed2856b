"""The seed's key-value server in Python, vsn "py-1": the same requests, replies and state as the
Rust kv (guests/rust/kv-core), so a running kv process hot swaps from any version in any language
to this one and back. Like Rust kv v1 it logs one info line per get and put.

| request                              | reply                          |
|--------------------------------------|--------------------------------|
| {"op":"put","key":"a","value":42}    | the previous value, or null    |
| {"op":"get","key":"a"}               | the value, or null             |
| {"op":"delete","key":"a"}            | the removed value, or null     |
| {"op":"keys"}                        | the keys, sorted               |
| {"op":"count"}                       | the number of keys             |
| {"op":"crash"}                       | none: traps (for the host's tests) |

Anything else is the error `unknown request: <what was wrong>`. A put whose value nests more
than MAX_VALUE_DEPTH arrays and objects is refused (`value nested too deep: ...`): the state
holding it could not be read back, here or in any other language. As a cast or an info message,
put and delete apply without a reply; anything else is logged at warn and ignored. The state is
`{"entries":{...}}`, keys sorted, byte for byte what the Rust kv writes.

Built by scripts/build-polyglot-guests.sh into guests/out/kv_py.wasm.
"""

import json as _json

import hotswap_guest
from hotswap_guest import Change, Error, GenServer, json

OPS = ("put", "get", "delete", "keys", "count")
INIT_HINT = 'bad init arguments (want nothing, null or {"entries":{...}})'
# serde_json reads 127 levels; a state holds each value two levels down (kv-core's MAX_VALUE_DEPTH).
MAX_VALUE_DEPTH = 125
TOO_DEEP = f"value nested too deep: a state keeps at most {MAX_VALUE_DEPTH} levels of arrays and objects"


class Kv(GenServer):
    vsn = "py-1"

    def init(self, args: bytes):
        if not bytes(args).strip(b" \t\n\r\x0c"):  # ASCII whitespace, as Rust's is_ascii_whitespace
            return {"entries": {}}
        try:
            value = json.decode(args)
            if value is None:
                return {"entries": {}}
            if not isinstance(value, dict):
                raise Error(f"invalid type: {kind(value)}, expected an object")
            return {"entries": entries_of(value.get("entries", {}))}
        except (Error, json.JsonError) as why:
            raise Error(f"{INIT_HINT}: {why}") from None

    def handle_call(self, request: bytes, caller: int) -> bytes:
        if is_crash(request):
            crash(caller)
        return json.encode(self.serve(parse(request)))

    def handle_cast(self, message: bytes) -> None:
        self.handle_message("cast", message)

    def handle_info(self, message: bytes) -> None:
        self.handle_message("info message", message)

    def code_change(self, change: Change, state: bytes, extra: bytes):
        try:
            value = json.decode(state)
            if not isinstance(value, dict):
                raise Error(f"invalid type: {kind(value)}, expected struct Entries")
            if "entries" not in value:
                raise Error("missing field `entries`")
            return {"entries": entries_of(value["entries"])}
        except (Error, json.JsonError) as why:
            raise Error(self.refusal(change, f"the state does not parse: {why}")) from None

    def handle_message(self, what: str, message: bytes) -> None:
        """A cast or an info message: put and delete apply, anything else is logged."""
        try:
            request = parse(message)
        except Error as why:
            hotswap_guest.warn(f"ignoring the {what}: {why}")
            return
        if request[0] in ("put", "delete"):
            self.serve(request)
        else:
            hotswap_guest.warn(
                f"ignoring the {what} {hotswap_guest.describe(message)}: "
                "only put and delete apply without a reply"
            )

    def serve(self, request: tuple):
        """Carries out a parsed request and returns the reply, logging gets and puts."""
        entries = self.state["entries"]
        op = request[0]
        if op == "put":
            _, key, value = request
            hotswap_guest.info(f"put {key} = {json.to_text(value)}")
            previous = entries.get(key)
            entries[key] = value
            return previous
        if op == "get":
            value = entries.get(request[1])
            hotswap_guest.info(f"get {request[1]} -> {json.to_text(value)}")
            return value
        if op == "delete":
            return entries.pop(request[1], None)
        if op == "keys":
            return sorted(entries)
        return len(entries)


def parse(request: bytes) -> tuple:
    """`("put", key, value)`, `("get", key)`, `("delete", key)`, `("keys",)` or `("count",)`;
    else Error("unknown request: ...") naming what was wrong, as the Rust kv words it."""
    try:
        value = json.decode(request)
    except json.JsonError as why:
        raise Error(f"unknown request: {why}") from None
    if not isinstance(value, dict):
        raise Error(f"unknown request: invalid type: {kind(value)}, expected internally tagged enum Request")
    twice = named_twice(request)
    if "op" in twice:
        raise Error("unknown request: duplicate field `op`")
    if "op" not in value:
        raise Error("unknown request: missing field `op`")
    op = value["op"]
    if not isinstance(op, str):
        raise Error(f"unknown request: invalid type: {kind(op)}, expected variant identifier")
    if op not in OPS:
        expected = ", ".join(f"`{name}`" for name in OPS)
        raise Error(f"unknown request: unknown variant `{op}`, expected one of {expected}")
    if op in ("keys", "count"):
        return (op,)
    if "key" in twice:
        raise Error("unknown request: duplicate field `key`")
    if "key" not in value:
        raise Error("unknown request: missing field `key`")
    if not isinstance(value["key"], str):
        raise Error(f"unknown request: invalid type: {kind(value['key'])}, expected a string")
    if op != "put":
        return (op, value["key"])
    if "value" in twice:
        raise Error("unknown request: duplicate field `value`")
    if "value" not in value:
        raise Error("unknown request: missing field `value`")
    # Counting brackets (native) bounds the depth from above: most puts need no walk.
    if request.count(b"[") + request.count(b"{") > MAX_VALUE_DEPTH and depth(value["value"]) > MAX_VALUE_DEPTH:
        raise Error(TOO_DEEP)
    return (op, value["key"], value["value"])


FIELDS = ("op", "key", "value")


def named_twice(request: bytes) -> set:
    """Which of the request's fields (`op`, `key`, `value`) its object names more than once.
    A dict keeps the last; the Rust kv refuses the request (serde's `duplicate field`), and
    so does this one. `request` is known to be a JSON object. Without a `\\` (an escape could
    spell a name) and with each name written once at most, nothing is named twice."""
    if b"\\" not in request and all(request.count(b'"%s"' % name.encode()) <= 1 for name in FIELDS):
        return set()
    objects = []
    _json.loads(bytes(request).decode("utf-8"), object_pairs_hook=lambda pairs: objects.append(pairs))
    names = [name for name, _ in objects[-1]]  # the outermost object is finished last
    return {name for name in FIELDS if names.count(name) > 1}


def depth(value) -> int:
    """How many lists and dicts `value` nests in one another: 0 for anything else."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level + 1)
            inner = item.values() if isinstance(item, dict) else item
            pending.extend((each, level + 1) for each in inner)
    return deepest


def entries_of(value) -> dict:
    if not isinstance(value, dict):
        raise Error(f"invalid type: {kind(value)}, expected a map")
    return dict(value)


def kind(value) -> str:
    """What a JSON value is, in serde's words (`integer `7``, `sequence`, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{json.to_text(value)}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{json.to_text(value)}`"
    if isinstance(value, str):
        return f"string {json.to_text(value)}"
    return "sequence" if isinstance(value, list) else "map"


def is_crash(request: bytes) -> bool:
    try:
        value = json.decode(request)
    except json.JsonError:
        return False
    return isinstance(value, dict) and value.get("op") == "crash"


def crash(caller: int):
    """Traps on purpose, so the host's tests can check that a trap in a Python guest kills
    this process only. An exception other than Error would be a trap too, but os.abort()
    cannot be caught anywhere on the way out."""
    import os

    hotswap_guest.error(f'kv py-1 traps on purpose: {{"op":"crash"}} from pid {caller}')
    os.abort()


Server = hotswap_guest.export(Kv)
