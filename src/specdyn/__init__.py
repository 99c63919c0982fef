"""specdyn: acceptance dynamics of tree-based speculative decoding."""

__version__ = "0.1.0"
