"""The one error type the command line turns into exit status 2."""


class UsageError(Exception):
    """Bad input: an unknown name, an out-of-range value, missing data, a
    malformed config.  The message names the value and what is accepted."""


class InvalidResult(RuntimeError):
    """A method broke the protocol (changed the original in place, returned
    another architecture, reached for the test data): its run is invalid."""
