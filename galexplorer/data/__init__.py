"""Readers (FITS, images, HDF5), preprocessing, stretches and thumbnails."""
