"""The engine's one user-facing error type."""

from __future__ import annotations


class InputError(Exception):
    """The input cannot be annotated. ``str(e)`` is one user-readable line (with a line number
    where one applies); the service stores it as the job's error and the CLI prints it."""


class ReferenceMismatch(InputError):
    """The input does not fit the reference (unknown contig, positions past a contig's end, REF
    alleles that disagree): real data on the synthetic demo bundle fails this way."""
