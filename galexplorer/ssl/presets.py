"""The shipped training presets: TOML files in ``galexplorer/resources/presets/``.

A preset is a ``--config`` file that comes with the package (``galexplorer train --preset
NAME``): the same keys as :class:`~galexplorer.ssl.config.TrainConfig`, applied above the
defaults and below a ``--config`` file and the command line. Each file begins with a comment
block: its first line says what the preset is for (``galexplorer presets`` lists it), the rest
the figures behind it, or "not yet measured".

They are package data, read with :mod:`importlib.resources`, so they install with the wheel
(the design card's top-level ``resources/`` would not be installed).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .config import parse_toml

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".toml"


def _folder() -> Traversable:
    return resources.files("galexplorer").joinpath("resources", "presets")


def preset_names() -> list[str]:
    """The shipped presets' names, sorted."""
    return sorted(p.name[:-len(SUFFIX)] for p in _folder().iterdir() if p.name.endswith(SUFFIX))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``.

    Raises:
        ConfigError: no preset of that name (the message names the valid ones).
    """
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}",
                          hint=f"valid: {', '.join(names)} (`galexplorer presets` says what each is for)")
    return _folder().joinpath(name + SUFFIX).read_text(encoding="utf-8")


def preset_summary(name: str) -> str:
    """The first line of the preset's leading comment: what it is for."""
    first = preset_text(name).lstrip().splitlines()[0]
    return first.lstrip("#").strip()


def load_preset(name: str) -> dict[str, Any]:
    """The options of preset ``name``, as a config file's table.

    Raises:
        ConfigError: an unknown preset, or a file that is not valid TOML.
    """
    return parse_toml(preset_text(name), f"preset {name}")
