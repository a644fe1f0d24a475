"""``python -m deepprior.cli``: the same as the ``deepprior`` command."""

from . import entry

entry()
