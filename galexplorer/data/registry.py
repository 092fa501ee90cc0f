"""The one registry of input file formats (as astropy's ``io.registry``).

Every format galexplorer reads is declared here once: its name, its title in messages, what it
holds (``images``, ``table``, ``array``), its file-name suffixes and, where a few bytes decide
it cheaply, its magic bytes. The modules that read a format register their reader for a
*purpose* — the command that reads it:

* ``ingest``: images to cut stamps from (``data/fits.py``, ``data/images.py``, ``data/hdf5.py``);
* ``embeddings``: a user's own (N, D) features (``explore/external.py``);
* ``catalog``: a table of objects (``data/catalog.py``).

:func:`identify` recognises a file for a purpose: first by its suffix (longest match, case
ignored), then, when no suffix fits, by its first bytes (FITS ``SIMPLE  =``, the HDF5 signature,
PNG, JPEG, TIFF, NumPy's ``\\x93NUMPY``, Parquet's ``PAR1``, VOTable XML, ``# %ECSV``). A file it
cannot place raises one :class:`~galexplorer.errors.InputError` naming the file and the formats
that purpose accepts, generated from this registry. Nothing else in the package lists suffixes
(``tests/test_vocabulary.py`` checks).

Extending: :func:`register_format` declares a new format, :func:`register_reader` gives it a
reader for a purpose, :func:`register_identifier` adds a content test ``(path, head) -> bool``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

#: bytes read from the start of a file for the content identifiers (the HDF5 signature may sit
#: after a user block of 512, 1024 or 2048 bytes)
HEAD_BYTES = 2048 + 8

#: what each purpose calls an unrecognised file, in the one-line error
PURPOSES: dict[str, str] = {
    "ingest": "file type",
    "embeddings": "embeddings format",
    "catalog": "catalogue format",
}

Identifier = Callable[[Path, bytes], bool]


@dataclass(frozen=True)
class Format:
    """One input format.

    Attributes:
        name: the registry key, e.g. ``"fits"``; ingest's ``InputFile.kind`` and the embeddings'
            ``source_format`` use it.
        title: how messages name it, e.g. ``"PNG/JPEG/TIFF"``.
        holds: what such a file holds: ``"images"``, ``"table"``, ``"array"``.
        suffixes: lower-case file-name endings, the usual one first.
        magic: byte strings a file of this format starts with (empty: none is cheap to test).
        astropy: the ``astropy.table.Table.read`` format name, for tables read with astropy.
    """

    name: str
    title: str
    holds: tuple[str, ...]
    suffixes: tuple[str, ...]
    magic: tuple[bytes, ...] = ()
    astropy: str | None = None


_FORMATS: dict[str, Format] = {}
_IDENTIFIERS: dict[str, list[Identifier]] = {}
_READERS: dict[tuple[str, str], Callable[..., Any]] = {}


def register_format(fmt: Format) -> Format:
    """Declare a format (its magic bytes become its first identifier).

    Raises:
        ValueError: the name is taken by a different format, or a suffix is not lower case.
    """
    old = _FORMATS.get(fmt.name)
    if old is not None and old != fmt:
        raise ValueError(f"format {fmt.name!r} is already registered as {old}")
    if any(s != s.lower() or not s.startswith(".") for s in fmt.suffixes):
        raise ValueError(f"format {fmt.name!r}: suffixes must be lower case and start with '.'")
    if old is None:
        _FORMATS[fmt.name] = fmt
        _IDENTIFIERS[fmt.name] = [_magic_identifier(fmt.magic)] if fmt.magic else []
    return fmt


def register_identifier(name: str, identifier: Identifier) -> None:
    """Add a content test for format ``name``: ``identifier(path, head)`` with the file's first
    :data:`HEAD_BYTES` bytes, True when the file is of that format.

    Raises:
        KeyError: no such format.
    """
    _IDENTIFIERS[_format(name).name].append(identifier)


def register_reader(name: str, purpose: str, reader: Callable[..., Any]) -> None:
    """Register ``reader`` as how ``purpose`` reads format ``name`` (its signature is the
    purpose's: ingest's ``read(path, hdu=None, dataset=None, position=True)`` (``data/stamps.py``),
    the embeddings' ``open(path, src, staging)``, the catalogue's ``read(path, fmt)``).
    Registering again replaces the reader.

    Raises:
        KeyError: no such format.
    """
    _READERS[(_format(name).name, purpose)] = reader


def unregister_reader(name: str, purpose: str) -> None:
    """Forget the reader of ``name`` for ``purpose`` (tests that register one clean up with it)."""
    _READERS.pop((name, purpose), None)


def unregister_format(name: str) -> None:
    """Forget format ``name``, its identifiers and its readers (for tests that declare one)."""
    _FORMATS.pop(name, None)
    _IDENTIFIERS.pop(name, None)
    for key in [k for k in _READERS if k[0] == name]:
        del _READERS[key]


def get_format(name: str) -> Format:
    """The format registered as ``name``.

    Raises:
        KeyError: no such format.
    """
    return _format(name)


def get_reader(name: str, purpose: str) -> Callable[..., Any]:
    """The reader ``purpose`` registered for format ``name``.

    Raises:
        KeyError: none is registered.
    """
    try:
        return _READERS[(name, purpose)]
    except KeyError:
        raise KeyError(f"no {purpose} reader for format {name!r}") from None


def accepted(purpose: str) -> list[Format]:
    """The formats ``purpose`` has a reader for, in the order they were declared."""
    return [f for f in _FORMATS.values() if (f.name, purpose) in _READERS]


def suffixes(purpose: str | None = None, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The suffixes of the formats ``purpose`` accepts (or of the formats ``names``, or of all)."""
    if names is not None:
        formats = [_format(n) for n in names]
    else:
        formats = accepted(purpose) if purpose is not None else list(_FORMATS.values())
    return tuple(s for f in formats for s in f.suffixes)


def describe(purpose: str) -> str:
    """The accepted formats in words, e.g. ``FITS (.fits, .fit) or HDF5 (.h5, .hdf5)``."""
    parts = [f"{f.title} ({', '.join(f.suffixes)})" for f in accepted(purpose)]
    if len(parts) <= 1:
        return "".join(parts) or "nothing (no reader is registered)"
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def by_suffix(path: str | Path, purpose: str) -> Format | None:
    """The accepted format whose suffix ends the file name (the longest such suffix), or None."""
    low = Path(path).name.lower()
    best: tuple[int, Format] | None = None
    for f in accepted(purpose):
        for s in f.suffixes:
            if low.endswith(s) and (best is None or len(s) > best[0]):
                best = (len(s), f)
    return best[1] if best else None


def by_content(path: str | Path, purpose: str) -> Format | None:
    """The first accepted format whose identifier recognises the file's first bytes, or None
    (also when the file cannot be read: its reader will say why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    for f in accepted(purpose):
        if any(test(Path(path), head) for test in _IDENTIFIERS[f.name]):
            return f
    return None


def identify(path: str | Path, purpose: str, *, sniff: bool = True, fallback: str | None = None) -> Format:
    """The format of ``path`` for ``purpose``: by suffix, then (``sniff``) by its first bytes.

    Args:
        path: the file.
        purpose: ``"ingest"``, ``"embeddings"``, ``"catalog"`` or one a caller registered readers for.
        sniff: read the first bytes when no suffix fits.
        fallback: the format to return instead of raising (a catalogue is CSV unless recognised).

    Raises:
        InputError: no accepted format fits; the message names the file and every accepted format.
    """
    found = by_suffix(path, purpose) or (by_content(path, purpose) if sniff else None)
    if found is not None:
        return found
    if fallback is not None:
        return _format(fallback)
    what = PURPOSES.get(purpose, f"{purpose} format")
    suffix = "".join(Path(path).suffixes[-2:]) or "(no extension)"
    if not sniff:
        raise InputError(f"unknown {what} {suffix!r} (its name fits no format)", path, f"give {describe(purpose)}")
    raise InputError(f"unknown {what} {suffix!r} (neither its name nor its first bytes fit a format)", path,
                     f"give {describe(purpose)}")


def identify_or_none(path: str | Path, purpose: str, *, sniff: bool = True) -> Format | None:
    """As :func:`identify`, but None for a file of no accepted format."""
    return by_suffix(path, purpose) or (by_content(path, purpose) if sniff else None)


def strip_suffix(name: str, names: tuple[str, ...] | None = None, purpose: str | None = None) -> str:
    """``name`` without its longest registered suffix (of the formats ``names``, or ``purpose``'s,
    or any), case ignored: ``a.fits.gz`` -> ``a``. Unchanged when none fits."""
    low = name.lower()
    for s in sorted(suffixes(purpose, names), key=len, reverse=True):
        if low.endswith(s):
            return name[: -len(s)]
    return name


def _format(name: str) -> Format:
    try:
        return _FORMATS[name]
    except KeyError:
        raise KeyError(f"no input format {name!r} (registered: {', '.join(_FORMATS)})") from None


def _magic_identifier(magic: tuple[bytes, ...]) -> Identifier:
    def starts_with_magic(path: Path, head: bytes) -> bool:
        return head.startswith(magic)

    return starts_with_magic


def _hdf5_signature(path: Path, head: bytes) -> bool:
    # the superblock is at 0, or after a user block of 512 bytes or a power of two above it
    sig = b"\x89HDF\r\n\x1a\n"
    return any(head[at:at + 8] == sig for at in (0, 512, 1024, 2048))


def _votable_xml(path: Path, head: bytes) -> bool:
    return head[:512].lstrip().startswith(b"<?xml") or b"<VOTABLE" in head[:512]


# -- the formats galexplorer reads: the one list of their suffixes ---------------------------

FITS = register_format(Format(
    "fits", "FITS", ("images", "table"),
    (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz"),
    magic=(b"SIMPLE  =",), astropy="fits"))
IMAGE = register_format(Format(
    "image", "PNG/JPEG/TIFF", ("images",), (".png", ".jpg", ".jpeg", ".tif", ".tiff"),
    magic=(b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")))
HDF5 = register_format(Format("hdf5", "HDF5", ("images", "array"), (".h5", ".hdf5", ".hdf", ".he5")))
register_identifier("hdf5", _hdf5_signature)
NPY = register_format(Format("npy", "NumPy", ("array",), (".npy",), magic=(b"\x93NUMPY",)))
PARQUET = register_format(Format("parquet", "Parquet", ("table",), (".parquet", ".pq"), magic=(b"PAR1",)))
CSV = register_format(Format("csv", "CSV", ("table",), (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")))
VOTABLE = register_format(Format("votable", "VOTable", ("table",), (".vot", ".votable", ".xml", ".vo"),
                                 astropy="votable"))
register_identifier("votable", _votable_xml)
ECSV = register_format(Format("ecsv", "ECSV", ("table",), (".ecsv",), magic=(b"# %ECSV",), astropy="ascii.ecsv"))
IPAC = register_format(Format("ipac", "IPAC", ("table",), (".tbl", ".ipac"), astropy="ascii.ipac"))

#: suffixes of tab-separated text (the CSV reader's separator is a tab for these)
TAB_SEPARATED = (".tsv", ".tsv.gz")
