"""Importing this module prepares a process for secret scans (``secret_engine.prepare``: detect-secrets loaded,
what a first scan compiles compiled). Worker processes preload it, so their fork server does this once for all of
them (``tandem.fork_server``); nothing else should import it."""

from tandem.core import secret_engine

secret_engine.prepare()
