"""docsort: sort scanned document pages at volume."""

__version__ = "0.1.0"
