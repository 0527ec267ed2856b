"""A stand-in for the host API (`wit_world.imports.runtime`), so the helper and kv run on a plain
CPython in the unit tests: it records the log lines instead of sending them to a node."""

from enum import Enum


class Level(Enum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


class FakeRuntime:
    Level = Level

    def __init__(self):
        self.lines = []  # (level name, message)

    def log(self, level, message):
        self.lines.append((level.name.lower(), message))

    def self_pid(self):
        return 7

    def whereis(self, name):
        return None

    def send(self, to, message):
        pass

    def send_after(self, to, message, millis):
        return 1

    def cancel_timer(self, timer):
        return False
