"""The Python guest helper of hotswap: write a process as a `GenServer` subclass, export it with
`export`, and componentize-py makes it a component of the `hotswap:otp/process` world that a
hotswap node spawns and hot swaps, like a Rust guest.

It is the Python twin of the Rust SDK (guests/rust/sdk): the node calls the `server` exports one
at a time; this module keeps the state between calls (in `self.state`), turns it into JSON for a
hot swap (`snapshot`) and back (`code_change`), and turns `Error` into the WIT `err`, so a guest
writes only its callbacks:

    import hotswap_guest
    from hotswap_guest import GenServer, Error, json

    class Counter(GenServer):
        vsn = "1"

        def init(self, args: bytes):
            return 0                      # the first state

        def handle_call(self, request: bytes, caller: int) -> bytes:
            self.state += 1
            return json.encode(self.state)

    Server = hotswap_guest.export(Counter)  # the name componentize-py looks for

Raise `Error("why")` for a caller's mistake: the caller gets the error and the process lives on
(a `json.JsonError` that a callback lets through counts as one, like `?` in Rust).
Any other exception traps, and a trap kills the process (as a panic does in Rust).
The host API is plain functions: `log`, `trace`, `debug`, `info`, `warn`, `error`,
`self_pid`, `whereis`, `send`, `send_after`, `cancel_timer`.
"""

from dataclasses import dataclass
from typing import Any, Optional

from . import json

try:  # the bindings componentize-py generates from wit/otp, present inside the component
    from componentize_py_types import Err as _Err
    from wit_world.imports import runtime as _runtime
    from wit_world.imports import types as _types
except ImportError:  # a plain CPython running the unit tests: see set_runtime
    _Err = None
    _runtime = None
    _types = None

__all__ = [
    "GenServer", "Error", "Change", "export", "json", "log", "trace", "debug", "info", "warn",
    "error", "self_pid", "whereis", "send", "send_after", "cancel_timer", "describe", "set_runtime",
]


class Error(Exception):
    """Raised by a callback to return an error to the node instead of trapping: the caller of
    `handle_call` gets it as the reply, a refused `init` aborts the spawn, a refused
    `code_change` leaves the old version serving."""


@dataclass(frozen=True)
class Change:
    """Which way a code change goes (`"upgrade"` or `"downgrade"`) and the version left."""

    direction: str
    vsn: str

    def __str__(self) -> str:
        return f"{self.direction} from vsn {json.to_text(self.vsn)}"


class GenServer:
    """A gen_server: a state (`self.state`) and the callbacks that act on it.

    Only `vsn`, `init` and `handle_call` are required; the other callbacks have defaults that
    suit a server whose state is JSON and which ignores casts and info messages.
    """

    #: This version's name, as the node reports it (`"1"`, `"py-1"`).
    vsn: str = ""

    #: The process's state: what `init` or `code_change` returned, changed by the handlers.
    state: Any = None

    def init(self, args: bytes) -> Any:
        """Returns the state of a freshly spawned process, from its spawn arguments.
        Raise Error to abort the spawn. Not called on a hot swap."""
        raise NotImplementedError

    def handle_call(self, request: bytes, caller: int) -> bytes:
        """Answers a request from `caller` (0 when outside the node) with the reply's bytes.
        Raise Error to reply with an error; the process lives on."""
        raise NotImplementedError

    def handle_cast(self, message: bytes) -> None:
        """Handles an asynchronous request. The default logs it at warn and ignores it."""
        warn(f"ignoring a cast: {describe(message)}")

    def handle_info(self, message: bytes) -> None:
        """Handles any other message (`send`, timers). The default logs and ignores it."""
        warn(f"ignoring an info message: {describe(message)}")

    def terminate(self, reason: str) -> None:
        """Called when the process is stopped on purpose. The default does nothing."""

    def snapshot(self) -> bytes:
        """The state as bytes for a hot swap; must not change it. The default is JSON
        (serde_json's form, so any language's version can read it)."""
        return json.encode(self.state)

    def code_change(self, change: Change, state: bytes, extra: bytes) -> Any:
        """Returns the state to adopt from `state`, which the version being left wrote, on a
        fresh instance (instead of `init`). The default adopts any JSON state as it is;
        override it to check or migrate the shape. Raise Error to refuse the change."""
        try:
            return json.decode(state)
        except json.JsonError as why:
            raise Error(self.refusal(change, f"the state does not parse: {why}")) from None

    def refusal(self, change: Change, why: str) -> str:
        """The message of a refused code change, as the Rust SDK words it."""
        return f"{change} to vsn {json.to_text(self.vsn)}: {why}"


def describe(data: bytes, limit: int = 200) -> str:
    """`data` as text for a log line: UTF-8 (invalid bytes replaced), cut after `limit`
    characters."""
    text = bytes(data).decode("utf-8", errors="replace")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(data)} bytes)"


def export(server_class: type) -> type:
    """Returns the class that componentize-py exports as `hotswap:otp/server`: assign it to
    `Server` at the top level of the app module. It makes one `server_class()` and keeps it
    for the life of the instance."""
    if not (isinstance(server_class, type) and issubclass(server_class, GenServer)):
        raise TypeError("export() takes a GenServer subclass")
    if not server_class.vsn:
        raise TypeError(f"{server_class.__name__}.vsn must name the version")
    server = server_class()
    started = False  # True once init or code_change has given the server a state

    def refuse(why: str):
        return _Err(why) if _Err is not None else Error(why)

    def start(callback: str, make):
        nonlocal started
        if started:
            raise refuse(f"{callback} called on a process that already has a state")
        try:
            server.state = make()
        except (Error, json.JsonError) as why:
            raise refuse(str(why)) from None
        started = True

    def running(callback: str):
        if not started:
            raise refuse(
                f"{callback} called on a process that has no state: init or code-change must come first"
            )

    class Server:
        """The `hotswap:otp/server` exports, over one `server_class` instance."""

        def init(self, args: bytes) -> None:
            start("init", lambda: server.init(bytes(args)))

        def handle_call(self, request: bytes, caller: int) -> bytes:
            running("handle-call")
            try:
                return bytes(server.handle_call(bytes(request), caller))
            except (Error, json.JsonError) as why:
                raise refuse(str(why)) from None

        def handle_cast(self, message: bytes) -> None:
            if started:
                server.handle_cast(bytes(message))
            else:
                error("handle-cast called on a process that has no state")

        def handle_info(self, message: bytes) -> None:
            if started:
                server.handle_info(bytes(message))
            else:
                error("handle-info called on a process that has no state")

        def terminate(self, reason: str) -> None:
            nonlocal started
            if started:
                server.terminate(reason)
                started = False
                server.state = None

        def snapshot(self) -> bytes:
            running("snapshot")
            try:
                return bytes(server.snapshot())
            except (Error, json.JsonError) as why:
                raise refuse(str(why)) from None

        def code_change(self, direction, state: bytes, extra: bytes) -> None:
            change = _change(direction)
            start("code-change", lambda: server.code_change(change, bytes(state), bytes(extra)))

        def vsn(self) -> str:
            return server.vsn

    Server.__name__ = Server.__qualname__ = "Server"
    return Server


def _change(direction) -> Change:
    """The WIT `change` (`Change_Upgrade(vsn)` or `Change_Downgrade(vsn)`) as a Change."""
    if isinstance(direction, Change):
        return direction
    downgrade = _types is not None and isinstance(direction, _types.Change_Downgrade)
    return Change("downgrade" if downgrade else "upgrade", direction.value)


# The host API (`interface runtime`), as plain functions.

_LEVELS = ("trace", "debug", "info", "warn", "error")


def log(level: str, message: str) -> None:
    """Writes `message` to the node's log at `level` ("trace" ... "error"); the node tags it
    with this process's pid, module and vsn."""
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    _host().log(_host().Level[level.upper()], message)


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)


def self_pid() -> int:
    """This process's pid, stable across hot swaps."""
    return _host().self_pid()


def whereis(name: str) -> Optional[int]:
    """The pid registered under `name`, or None."""
    return _host().whereis(name)


def send(to: int, message: bytes) -> None:
    """Sends `message` to `to`'s handle_info. Raises Error if `to` is gone or full."""
    try:
        _host().send(to, bytes(message))
    except Exception as why:
        if _Err is not None and isinstance(why, _Err):  # the WIT `err`, from componentize-py
            raise Error(str(why.value)) from None
        raise


def send_after(to: int, message: bytes, millis: int) -> int:
    """Sends `message` to `to` after `millis` ms; returns a timer for cancel_timer."""
    return _host().send_after(to, bytes(message), millis)


def cancel_timer(timer: int) -> bool:
    """Cancels a timer; True if it was pending and will now never fire."""
    return _host().cancel_timer(timer)


def set_runtime(runtime) -> None:
    """Replaces the host API, for unit tests on a plain CPython: `runtime` needs what the
    generated `wit_world.imports.runtime` has (`Level`, `log`, `self_pid`, ...)."""
    global _runtime
    _runtime = runtime


def _host():
    if _runtime is None:
        raise RuntimeError("no host: run inside a component, or call set_runtime in a test")
    return _runtime
