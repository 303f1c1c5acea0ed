"""Fixtures for the magic tests: a real IPython shell (see tests/ipython_shell.py)."""

from ipython_shell import bare, ip, run, secrets, shell  # noqa: F401
