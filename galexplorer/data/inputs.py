"""Finding input files: files and folders (recursed, sorted), file kinds, per-band file patterns."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputError
from . import fits, hdf5, images, registry  # noqa: F401 - importing them registers ingest's readers

log = logging.getLogger(__name__)

PURPOSE = "ingest"


@dataclass
class InputFile:
    """One input file: its kind ("fits", "image" or "hdf5") and whether it was named explicitly.

    A file named on the command line (or in a catalogue's path column) must be readable; a file
    found inside a folder that cannot be read is skipped and reported.
    """

    path: Path
    kind: str
    explicit: bool

    @property
    def stem(self) -> str:
        return file_stem(self.path)


@dataclass
class BandGroup:
    """The per-band files of one object (or one mosaic tile), matched by ``--band-pattern``."""

    key: str
    files: dict[str, InputFile] = field(default_factory=dict)


def file_stem(path: Path) -> str:
    """The file name without its image suffixes: ``a.fits.gz`` -> ``a``, ``b.fz`` -> ``b``."""
    stripped = registry.strip_suffix(path.name, purpose=PURPOSE)
    return stripped if stripped != path.name else path.stem


def kind_of(path: Path, sniff: bool = False) -> str | None:
    """The registry's name of the file's ingest format ("fits", "image", "hdf5"), or None.

    By suffix; with ``sniff`` also by the first bytes when no suffix fits (named files only: a
    folder's other files are not opened).
    """
    fmt = registry.identify_or_none(path, PURPOSE, sniff=sniff)
    return fmt.name if fmt is not None else None


def find_inputs(inputs: list[str | Path], exclude: set[Path] | None = None) -> tuple[list[InputFile], int]:
    """Expand files and folders into input files.

    Folders are searched recursively and their files sorted by path, so the same folder always
    gives the same order; hidden files (``.name``) are skipped; files of unknown type inside a
    folder (by suffix: they are not opened) are ignored and counted. A named file is recognised
    by its suffix, else by its first bytes (``registry.identify``). ``exclude`` (resolved paths)
    are skipped, e.g. the output.

    Returns:
        ``(files, n_ignored)``.

    Raises:
        InputError: a named path does not exist, a named file is of unknown type, or a folder
            holds no image files.
    """
    exclude = exclude or set()
    files: list[InputFile] = []
    ignored = 0
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputError("no such file or folder", p, "check the path")
        if p.is_dir():
            found = 0
            for q in sorted(p.rglob("*")):
                if not q.is_file() or any(part.startswith(".") for part in q.relative_to(p).parts):
                    continue
                if q.resolve() in exclude:
                    continue
                kind = kind_of(q)
                if kind is None:
                    ignored += 1
                    continue
                if q.resolve() not in seen:
                    seen.add(q.resolve())
                    files.append(InputFile(q, kind, explicit=False))
                    found += 1
            if found == 0:
                raise InputError("no image files in this folder", p,
                                 f"looked for {', '.join(registry.suffixes(PURPOSE))}")
        else:
            kind = registry.identify(p, PURPOSE).name   # by suffix, else by its first bytes
            if p.resolve() in exclude:
                raise InputError("this is the output file; it cannot also be an input", p,
                                 "choose another -o")
            if p.resolve() not in seen:
                seen.add(p.resolve())
                files.append(InputFile(p, kind, explicit=True))
    if ignored:
        log.info("ignored %d file(s) of unknown type in the input folders", ignored)
    return files, ignored


def pattern_regex(pattern: str, bands: list[str], need_id: bool) -> re.Pattern:
    """A regular expression for a file-name pattern with ``{band}`` and (optionally) ``{id}``.

    Raises:
        ConfigError: the pattern lacks ``{band}`` (or ``{id}`` when ``need_id``), or has another
            placeholder.
    """
    fields = re.findall(r"\{([^{}]*)\}", pattern)
    unknown = sorted(set(fields) - {"id", "band"})
    if unknown:
        raise ConfigError(f"--band-pattern {pattern!r} has unknown placeholder(s) "
                          f"{', '.join('{' + u + '}' for u in unknown)}; use {{id}} and {{band}}")
    if "band" not in fields:
        raise ConfigError(f"--band-pattern {pattern!r} has no {{band}}, e.g. '{{id}}_{{band}}.fits'")
    if need_id and "id" not in fields:
        raise ConfigError(f"--band-pattern {pattern!r} has no {{id}}, e.g. '{{id}}_{{band}}.fits'")
    if fields.count("id") > 1 or fields.count("band") > 1:
        raise ConfigError(f"--band-pattern {pattern!r} must use {{id}} and {{band}} once each")
    band_alt = "|".join(re.escape(b) for b in sorted(bands, key=len, reverse=True))
    parts = re.split(r"(\{id\}|\{band\})", pattern)
    rx = "".join("(?P<id>.+?)" if part == "{id}" else f"(?P<band>{band_alt})" if part == "{band}"
                 else re.escape(part) for part in parts)
    return re.compile(rx)


def group_by_band(files: list[InputFile], pattern: str, bands: list[str], need_id: bool = True
                  ) -> tuple[list[BandGroup], list[InputFile]]:
    """Group per-band files by the ``{id}`` part of their names.

    Args:
        files: the input files; only their names are matched (not their folders).
        pattern: e.g. ``'{id}_{band}.fits'``.
        bands: the band names, blue to red.
        need_id: whether the pattern must contain ``{id}`` (not for a single mosaic).

    Returns:
        ``(groups, unmatched)``: groups in the order of their first file; files whose name
        does not fit the pattern.

    Raises:
        ConfigError: a bad pattern.
        InputError: a band without any file; an object with a band missing; two files for the
            same object and band.
    """
    rx = pattern_regex(pattern, bands, need_id)
    groups: dict[str, BandGroup] = {}
    unmatched = []
    for f in files:
        m = rx.fullmatch(f.path.name)
        if m is None:
            unmatched.append(f)
            continue
        key = m.groupdict().get("id") or ""
        band = m.group("band")
        g = groups.setdefault(key, BandGroup(key))
        if band in g.files:
            raise InputError(f"two files for object {key!r} band {band!r}: {g.files[band].path} and {f.path}",
                             f.path, "keep one of them")
        g.files[band] = f
    seen = {b for g in groups.values() for b in g.files}
    for b in bands:
        if b not in seen:
            raise InputError(f"no file for band {b!r} matches --band-pattern {pattern!r}",
                             files[0].path.parent if files else None,
                             f"check --bands {','.join(bands)} and the file names")
    for g in groups.values():
        missing = [b for b in bands if b not in g.files]
        if missing:
            example = pattern.replace("{id}", g.key).replace("{band}", missing[0])
            raise InputError(f"object {g.key!r} has no file for band(s) {', '.join(missing)} "
                             f"(expected {example})", next(iter(g.files.values())).path.parent,
                             "add the file or remove the object's other bands")
    if unmatched:
        log.info("%d file(s) do not fit --band-pattern %r and were ignored (first: %s)", len(unmatched),
                 pattern, unmatched[0].path.name)
    return list(groups.values()), unmatched
