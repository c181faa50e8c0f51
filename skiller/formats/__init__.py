"""Exports into other tools' formats: τ²-bench domain packages and Hugging Face datasets."""
from skiller.formats.common import ExportError

__all__ = ["ExportError"]
