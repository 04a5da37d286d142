"""The Lua programs the monitor runs on Redis: one `.lua` file each, beside the Python that
calls it, with a header saying its KEYS, ARGV and reply. Read once, at import; registered
with `register_script` by their callers (EVALSHA, the script body sent only if Redis lacks
it)."""

from __future__ import annotations

from importlib import resources


def script(name: str, package: str = "monitor") -> str:
    """The text of `<name>.lua` in `package`."""
    return (resources.files(package) / f"{name}.lua").read_text(encoding="utf-8")
