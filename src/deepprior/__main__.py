"""``python -m deepprior``: the same as the ``deepprior`` command."""

from .cli import entry

entry()
