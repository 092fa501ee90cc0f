"""The desktop explorer (the only package that imports Qt)."""
