"""Load a fail2ban filter file unmodified: includes, ``.local`` files, interpolation, tags.

This follows fail2ban's own reading of ``filter.d/NAME.conf`` (re-implemented, not copied):

1. **Files.** ``NAME.conf``, then ``NAME.d/*.conf``, ``NAME.local``, ``NAME.d/*.local`` (those
   that exist). Each file's ``[INCLUDES]`` ``before``/``after`` lists (one path per line,
   relative to that file's folder) are read before/after it, recursively; a ``.local`` beside
   an included ``.conf`` is read right after it. Missing includes are skipped (fail2ban does
   the same: ``common.local`` usually does not exist) and listed in
   :attr:`FilterDefinition.missing`. ``search`` folders are tried for a missing include by
   its file name (fail2ban's test filters include ``../../../../config/filter.d/common.conf``).
2. **Merge.** ``[DEFAULT]`` and each section are merged file after file, later values
   winning. Before a section is overridden, its previous values are kept as
   ``KNOWN/<section>``, which ``%(known/NAME)s`` reads. Conditional sections
   (``[Definition?family=inet6]``) are kept under suffixed names and otherwise ignored.
3. **Interpolation** ``%(NAME)s`` when a value is read, in the section being read: the caller's
   options first, then the section, then ``[DEFAULT]``; ``%(section/NAME)s`` reads another
   section, ``%(known/NAME)s`` the value before the last override (or ``[DEFAULT]``),
   ``%(default/NAME)s`` ``[DEFAULT]``, ``%(__name__)s`` the section's name; ``%%`` is ``%``;
   at most 10 levels deep.
4. **Options.** ``[Definition]``'s ``failregex``, ``ignoreregex``, ``prefregex``,
   ``datepattern``, ``maxlines``, ``journalmatch``, ``usedns`` are read with the caller's
   options (``mode=aggressive``) overriding any value of the same name; ``[Init]`` values
   are added (as ``NAME`` unless the caller set it, and as ``known/NAME``).
5. **Tags** ``<NAME>`` inside those values are then replaced, recursively and innermost
   first (``<mdre-<mode>>``), by another of those options, or by a ``[Definition]`` value
   (``<section/NAME>`` reads another section). Unknown tags (``<HOST>``, ``<F-USER>``) stay
   for the regex compiler.

The result, :class:`FilterDefinition`, is plain data; nothing here compiles a regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from shieldwall.detect.fail2ban.ini import IniFile, parse_ini
from shieldwall.errors import RuleError

__all__ = ["FilterDefinition", "MergedConfig", "read_filter", "substitute_tags"]

_MAX_DEPTH: Final = 10
_MAX_TAG_REPLACE: Final = 25
_INTERP: Final = re.compile(r"%\(([^)]+)\)s")
_SECTION_OPT: Final = re.compile(r"^([\w\-]+)/([^\s>]+)$")
_CONDITIONAL: Final = re.compile(r"^(\w+)(\?.+)$")
_TAG: Final = re.compile(r"<([^ <>]+)>")
_DEFINITION: Final = "Definition"
_INIT: Final = "Init"
_INCLUDES: Final = "INCLUDES"
_OPTIONS: Final = (
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
)


class _Missing(Exception):
    """An option or section is not defined (internal)."""


@dataclass(frozen=True, slots=True)
class FilterDefinition:
    """A fail2ban filter after includes, interpolation and tag substitution.

    ``failregex``/``ignoreregex`` hold one regex per entry, still with fail2ban's tags
    (``<HOST>``, ``<F-USER>``…). ``datepattern`` is fail2ban's syntax (several templates are
    separated by newlines), ``None`` for fail2ban's default template list.
    """

    name: str
    path: str
    options: Mapping[str, str]
    failregex: tuple[str, ...]
    ignoreregex: tuple[str, ...] = ()
    prefregex: str | None = None
    datepattern: str | None = None
    maxlines: int = 1
    journalmatch: tuple[str, ...] = ()
    usedns: str | None = None
    files: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass(slots=True)
class MergedConfig:
    """Files merged the fail2ban way, with ``%(NAME)s`` interpolation on read."""

    defaults: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def merge(self, ini: IniFile) -> None:
        """Add one file's content over what is already there."""
        self.files.append(ini.origin)
        self.defaults.update(ini.defaults)
        for name, values in ini.sections.items():
            cond = _CONDITIONAL.match(name)
            if cond is not None:
                name = cond.group(1)
                values = {key + cond.group(2): value for key, value in values.items()}
            existing = self.sections.get(name)
            if existing is None:
                self.sections[name] = dict(values)
                continue
            known = self.sections.setdefault("KNOWN/" + name, {})
            known.update({key: existing[key] for key in values if key in existing})
            existing.update(values)

    def has_section(self, section: str) -> bool:
        return section in self.sections

    def own_options(self, section: str) -> list[str]:
        return list(self.sections.get(section, {}))

    def raw(self, section: str, option: str, variables: Mapping[str, str] | None = None) -> str:
        option = option.lower()
        if variables and option in variables:
            return variables[option]
        if section != "DEFAULT":
            values = self.sections.get(section)
            if values is None:
                raise _Missing(f"no section [{section}]")
            if option in values:
                return values[option]
        if option in self.defaults:
            return self.defaults[option]
        raise _Missing(f"no option {option!r} in [{section}]")

    def get(self, section: str, option: str, variables: Mapping[str, str] | None = None) -> str:
        """The interpolated value (raises RuleError on a broken reference)."""
        value = self.raw(section, option, variables)
        return self._interpolate(section, option, value, variables or {}, 1)

    def get_ex(self, section: str, option: str, variables: Mapping[str, str] | None = None) -> str:
        """Like :meth:`get`, but ``other/NAME`` reads section ``other`` (``known``: the
        previous value, ``default``: ``[DEFAULT]``)."""
        if "/" in option:
            found = _SECTION_OPT.search(option)
            if found is not None:
                sec, opt = found.group(1), found.group(2)
                lower = sec.lower()
                candidates: tuple[str, ...]
                if lower == "known":
                    candidates = ("KNOWN/" + section, section)
                elif lower == "default":
                    candidates = ("DEFAULT",)
                else:
                    candidates = (sec,)
                for candidate in candidates:
                    try:
                        return self.get(candidate, opt)
                    except _Missing:
                        continue
        return self.get(section, option, variables)

    def _lookup(self, section: str, name: str, variables: Mapping[str, str]) -> str:
        key = name.lower()
        if key in variables:
            return variables[key]
        if "/" in name and _SECTION_OPT.match(name):
            sec, opt = name.split("/", 1)
            lower = sec.lower()
            opt = opt.lower()
            if lower == "known":
                known = self.sections.get("KNOWN/" + section, {})
                if opt in known:
                    return known[opt]
                if opt in self.defaults:
                    return self.defaults[opt]
            elif lower == "default":
                if opt in self.defaults:
                    return self.defaults[opt]
            else:
                values = self.sections.get(sec)
                if values is not None:
                    if opt in values:
                        return values[opt]
                    if opt in self.defaults:
                        return self.defaults[opt]
        if section != "DEFAULT" and key in self.sections.get(section, {}):
            return self.sections[section][key]
        if key in self.defaults:
            return self.defaults[key]
        if key == "__name__":
            return section
        raise _Missing(f"%({name})s in [{section}]")

    def _interpolate(
        self, section: str, option: str, value: str, variables: Mapping[str, str], depth: int
    ) -> str:
        if "%" not in value:
            return value
        if depth > _MAX_DEPTH:
            raise RuleError(f"[{section}] {option}: interpolation deeper than {_MAX_DEPTH} levels")
        out: list[str] = []
        rest = value
        while rest:
            pos = rest.find("%")
            if pos < 0:
                out.append(rest)
                break
            out.append(rest[:pos])
            rest = rest[pos:]
            if rest.startswith("%%"):
                out.append("%")
                rest = rest[2:]
                continue
            found = _INTERP.match(rest)
            if found is None:
                raise RuleError(
                    f"[{section}] {option}: '%' must be followed by '%' or '(NAME)s', "
                    f"found {rest[:20]!r}"
                )
            rest = rest[found.end() :]
            try:
                sub = self._lookup(section, found.group(1), variables)
            except _Missing as exc:
                raise RuleError(
                    f"[{section}] {option}: %({found.group(1)})s is not defined"
                ) from exc
            out.append(self._interpolate(section, option, sub, variables, depth + 1))
        return "".join(out)


def substitute_tags(
    tags: Mapping[str, str],
    extra: Callable[[str], str | None] | None = None,
    ignore: Iterable[str] = (),
) -> dict[str, str]:
    """Replace ``<NAME>`` in every value by another value (or ``extra(NAME)``), recursively.

    Tags that resolve to nothing are left as they are. Raises RuleError for a definition
    that refers to itself.
    """
    result = dict(tags)
    skip = set(ignore)
    done: set[str] = set()
    counts: dict[str, dict[str, int]] = {}
    while True:
        again = False
        for tag in list(result):
            if tag in skip or tag in done:
                continue
            value = original = result[tag]
            replaced = counts.setdefault(tag, {})
            found = _TAG.search(value)
            while found is not None:
                inner = found.group(1)
                if inner in skip:
                    found = _TAG.search(value, found.end())
                    continue
                if inner == tag or replaced.get(inner, 0) > _MAX_TAG_REPLACE:
                    raise RuleError(
                        f"{tag}: refers to itself through <{inner}> and cannot be resolved"
                    )
                repl = result.get(inner)
                if repl is None and extra is not None:
                    repl = extra(inner)
                if repl is None:
                    found = _TAG.search(value, found.end())
                    continue
                value = value.replace(f"<{inner}>", repl)
                replaced[inner] = replaced.get(inner, 0) + 1
                found = _TAG.search(value, found.start())
            if value != original:
                if _TAG.search(value):
                    again = True
                result[tag] = value
            if "<" not in value:
                done.add(tag)
        if not again:
            return result


def _include_list(ini: IniFile, key: str) -> list[str]:
    value = ini.sections.get(_INCLUDES, {}).get(key, "")
    return [line.strip() for line in value.split("\n") if line.strip()]


class _Reader:
    def __init__(self, search: Sequence[Path]) -> None:
        self.search = tuple(search)
        self.cache: dict[Path, IniFile] = {}
        self.missing: list[str] = []

    def parse(self, path: Path) -> IniFile:
        cached = self.cache.get(path)
        if cached is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RuleError(f"{path}: cannot read: {exc}") from exc
            cached = self.cache[path] = parse_ini(text, str(path))
        return cached

    def locate(self, base: Path, name: str) -> Path | None:
        candidate = Path(name) if Path(name).is_absolute() else base / name
        if candidate.is_file():
            return candidate
        for folder in self.search:
            other = folder / Path(name).name
            if other.is_file():
                return other
        self.missing.append(str(candidate))
        return None

    def expand(self, path: Path, seen: tuple[Path, ...] = ()) -> list[Path]:
        """``path`` with its includes, in reading order."""
        ini = self.parse(path)
        result: list[Path] = []
        for key in ("before", "after"):
            found: list[Path] = []
            for name in _include_list(ini, key):
                located = self.locate(path.parent, name)
                if located is None or located in seen or located == path:
                    continue
                found += self.expand(located, (*seen, path))
                local = located.with_suffix(".local")
                if located.suffix == ".conf" and local.is_file() and local not in seen:
                    found += self.expand(local, (*seen, path))
            if key == "before":
                result += found
                result.append(path)
            else:
                result += found
        return result


def _files(path: Path, reader: _Reader) -> list[Path]:
    base = path.with_suffix("")
    folder = Path(str(base) + ".d")
    tops: list[Path] = [path]
    if folder.is_dir():
        tops += sorted(folder.glob("*.conf"))
    local = base.with_suffix(".local")
    if local.is_file():
        tops.append(local)
    if folder.is_dir():
        tops += sorted(folder.glob("*.local"))
    ordered: list[Path] = []
    for top in tops:
        for item in reader.expand(top):
            if item not in ordered:
                ordered.append(item)
    return ordered


def read_filter(
    path: str | Path,
    options: Mapping[str, str] | None = None,
    *,
    search: Sequence[str | Path] = (),
) -> FilterDefinition:
    """Read ``filter.d/NAME.conf`` (and everything it includes) with caller ``options``.

    ``options`` are what a jail passes as ``filter = NAME[key=value, …]`` (``mode``,
    ``logtype``, ``publickey``…). Raises RuleError naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise RuleError(f"{path}: no such filter file")
    reader = _Reader([Path(s) for s in search])
    merged = MergedConfig()
    for item in _files(path, reader):
        merged.merge(reader.parse(item))
    origin = str(path)
    init = {key.lower(): str(value) for key, value in (options or {}).items()}
    variables = dict(init)
    if not merged.has_section(_DEFINITION):
        raise RuleError(f"{origin}: no [Definition] section")
    opts: dict[str, str] = {}
    for name in _OPTIONS:
        if name in variables:
            continue
        try:
            opts[name] = merged.get(_DEFINITION, name, variables)
        except _Missing:
            continue
        except RuleError as exc:
            raise RuleError(f"{origin}: {exc}") from exc
    if merged.has_section(_INIT):
        for name in merged.own_options(_INIT):
            try:
                value = merged.get(_INIT, name)
            except (_Missing, RuleError) as exc:
                raise RuleError(f"{origin}: [Init] {name}: {exc}") from exc
            if not name.startswith("known/"):
                init["known/" + name] = value
            init.setdefault(name, value)
    combined = {**opts, **init}
    ignore = {name for name in combined if _CONDITIONAL.match(name)}

    def extra(tag: str) -> str | None:
        try:
            return merged.get_ex(_DEFINITION, tag, variables)
        except _Missing:
            return None

    try:
        resolved = substitute_tags(combined, extra, ignore)
    except RuleError as exc:
        raise RuleError(f"{origin}: {exc}") from exc
    return _definition(path, options or {}, resolved, merged, reader)


def _lines(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(line for line in value.split("\n") if line != "")


def _definition(
    path: Path,
    options: Mapping[str, str],
    values: Mapping[str, str],
    merged: MergedConfig,
    reader: _Reader,
) -> FilterDefinition:
    origin = str(path)
    maxlines = 1
    if values.get("maxlines", "").strip():
        try:
            maxlines = int(values["maxlines"])
        except ValueError as exc:
            raise RuleError(f"{origin}: maxlines: not an integer: {values['maxlines']!r}") from exc
        if maxlines < 1:
            raise RuleError(f"{origin}: maxlines: must be at least 1")
    prefregex = values.get("prefregex") or None
    datepattern = values.get("datepattern")
    datepattern = datepattern.strip() if datepattern and datepattern.strip() else None
    usedns = values.get("usedns")
    return FilterDefinition(
        name=path.stem,
        path=origin,
        options=dict(options),
        failregex=_lines(values.get("failregex")),
        ignoreregex=_lines(values.get("ignoreregex")),
        prefregex=prefregex,
        datepattern=datepattern,
        maxlines=maxlines,
        journalmatch=tuple(line.strip() for line in _lines(values.get("journalmatch"))),
        usedns=usedns.strip().lower() if usedns else None,
        files=tuple(merged.files),
        missing=tuple(dict.fromkeys(reader.missing)),
    )
