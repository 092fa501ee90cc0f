"""What ingest's reader of a format gives for one file it reads whole: :class:`FileStamps`.

Every format registered for the ``ingest`` purpose (``data/registry.py``) has a reader
``read(path, hdu=None, dataset=None, position=True)``: FITS (``fits.py``) and PNG/JPEG/TIFF
(``images.py``) give a :class:`FileStamps`; HDF5 (``hdf5.py``) gives an
:class:`~galexplorer.data.hdf5.H5Cube`, read in batches. A new single-file format needs only its
``Format`` and a reader that returns a :class:`FileStamps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class FileStamps:
    """The stamps of one input file.

    Attributes:
        path: the file.
        data: (N, C, H, W) float32: N objects (usually 1) of C bands.
        bands: the band names the file gives, blue to red, or None.
        named: whether ``bands`` are real names (a FITS header's FILTERn), checked against
            ``--bands`` and earlier inputs, rather than a channel order (an RGB image's b, g, r).
        ra, dec: degrees (ICRS) of the image centre, NaN when unknown or not asked for.
        sky: the local WCS at the centre, ``(cd (2, 2) degrees per pixel, (x, y) pixel)``, or None.
    """

    path: Path
    data: np.ndarray
    bands: list[str] | None = None
    named: bool = False
    ra: float = np.nan
    dec: float = np.nan
    sky: tuple[np.ndarray, tuple[float, float]] | None = None
