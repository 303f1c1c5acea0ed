"""Fixtures for the security tests: the IPython shell of tests/ipython_shell.py."""

from ipython_shell import bare, ip, run, secrets, shell  # type: ignore[import-not-found]  # noqa: F401
