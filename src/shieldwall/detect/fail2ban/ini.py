"""Read one INI file the way fail2ban's config parser does (pure: text in, sections out).

fail2ban reads its ``.conf``/``.local`` files with Python's ``configparser`` configured with
``;`` as inline comment prefix. This module reproduces the parts of that syntax filters use,
without interpolation (see :mod:`shieldwall.detect.fail2ban.config`):

* ``[section]`` headers (the text between the first ``[`` and the last ``]``); ``[DEFAULT]``
  holds defaults for every section;
* ``key = value`` or ``key: value`` (the first ``=`` or ``:`` splits); keys are lowercased and
  stripped, values stripped;
* a line indented deeper than the line that started the current value continues that value
  (one regex per line for ``failregex``): it is stripped and joined with ``\\n``; an empty line
  inside a value is kept, trailing empty lines are dropped;
* full-line comments start with ``#`` or ``;`` (after any indentation) and are skipped, even
  inside a multi-line value; an inline comment starts with ``;`` at the start of the line or
  after whitespace (``a ;b`` is ``a``, ``a;b`` stays);
* a section or key that appears twice in one file is merged, the last value winning.

A line that is none of these is an error naming the file and line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from shieldwall.errors import RuleError

__all__ = ["DEFAULT_SECTION", "IniFile", "parse_ini"]

DEFAULT_SECTION: Final = "DEFAULT"

_SECTION: Final = re.compile(r"\[(?P<header>.+)\]")
_OPTION: Final = re.compile(r"(?P<option>.*?)\s*(?P<vi>[=:])\s*(?P<value>.*)$")
_COMMENT_PREFIXES: Final = ("#", ";")


@dataclass(slots=True)
class IniFile:
    """The raw (uninterpolated) content of one file, in file order."""

    origin: str
    defaults: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)


def _strip_inline_comment(line: str) -> str:
    index = -1
    while True:
        index = line.find(";", index + 1)
        if index < 0:
            return line
        if index == 0 or line[index - 1].isspace():
            return line[:index]


def parse_ini(text: str, origin: str) -> IniFile:
    """Parse ``text`` (the content of ``origin``); raises RuleError on a malformed line."""
    result = IniFile(origin)
    current: dict[str, list[str]] | None = None
    values: dict[str, dict[str, list[str]]] = {}
    option: str | None = None
    indent = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped_full = raw.strip()
        if stripped_full.startswith(_COMMENT_PREFIXES):
            continue
        value = _strip_inline_comment(raw).strip()
        if not value:
            if current is not None and option is not None:
                current[option].append("")
            continue
        first = re.search(r"\S", raw)
        level = first.start() if first is not None else 0
        if current is not None and option is not None and level > indent:
            current[option].append(value)
            continue
        indent = level
        header = _SECTION.match(value)
        if header is not None:
            current = values.setdefault(header.group("header"), {})
            option = None
            continue
        if current is None:
            raise RuleError(f"{origin}:{number}: a key before any [section]: {raw.strip()!r}")
        found = _OPTION.match(value)
        if found is None or not found.group("option").strip():
            raise RuleError(f"{origin}:{number}: not a 'key = value' line: {raw.strip()!r}")
        option = found.group("option").strip().lower()
        current[option] = [found.group("value").strip()]
    for name, options in values.items():
        joined = {key: "\n".join(lines).rstrip() for key, lines in options.items()}
        if name == DEFAULT_SECTION:
            result.defaults.update(joined)
        else:
            result.sections[name] = joined
    return result
