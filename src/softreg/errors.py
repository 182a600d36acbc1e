"""The one exception type for mistakes a user can fix (bad input, bad options)."""

from __future__ import annotations


class SoftregError(Exception):
    """A problem with the user's input: the message names it and says how to fix it.

    The command line prints the message on one line and exits with status 2.
    Library users can catch it like any other exception; it also subclasses
    ``ValueError`` so code written against scikit-learn's conventions keeps working.
    """


class UserInputError(SoftregError, ValueError):
    """Invalid data, a file that cannot be read, or a parameter out of range."""
