"""The Python guests' unit tests, run on a plain CPython (no component): `python -m unittest
discover -s tests -t .` in guests/python, or `scripts/build-polyglot-guests.sh test`."""
