"""Importing this module builds the default encoding's counter (``tokens.counter``). Worker processes preload it,
so their fork server builds it once for all of them and every worker counts tokens from its first task
(``tokens.count_many`` hands its counts to the workers where they run); nothing else should import it."""

from tandem.core import tokens

tokens.counter(tokens.DEFAULT_ENCODING)
