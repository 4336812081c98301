"""VALOR reproduction library: the code behind the notebooks (see README.md)."""

__version__ = "0.1.0"
