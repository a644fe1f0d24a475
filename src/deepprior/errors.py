"""Typed exceptions. Every user-facing failure is one of these, with a one-line message
that says what is wrong and how to fix it; the CLI turns them into exit code 2."""

from __future__ import annotations


class DeeppriorError(Exception):
    """Base class of every error deepprior raises on purpose."""


class InputError(DeeppriorError, ValueError):
    """A file, array or option given by the user is unusable (wrong shape, value, format)."""


class ConfigError(InputError):
    """An unknown name (net, preset, method) or an inconsistent combination of options."""


class OutputExistsError(DeeppriorError, FileExistsError):
    """An output file already exists and overwriting was not asked for."""


class DivergenceError(DeeppriorError, RuntimeError):
    """The fit kept diverging after the allowed number of restores."""


class ResourceError(DeeppriorError, MemoryError):
    """The run would need more memory than is free; the message names a setting that fits."""
