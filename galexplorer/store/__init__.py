"""HDF5 cutout and embedding stores: schema, validation, atomic writing."""

from .cutouts import CutoutStore, CutoutWriter
from .embeddings import EmbeddingStore, EmbeddingStoreWriter
from .schema import SCHEMA_VERSION, ObjectTable

__all__ = ["CutoutStore", "CutoutWriter", "EmbeddingStore", "EmbeddingStoreWriter", "ObjectTable",
           "SCHEMA_VERSION"]
