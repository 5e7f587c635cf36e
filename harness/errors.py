"""The one error type the command line turns into exit status 2, and the
status of a write that failed (methods/_files.py: WriteError)."""

# EX_IOERR of sysexits.h: a file could not be written (a full disk, a quota, an I/O error).  Not 1
# (some runs failed), not 2 (bad input): a wrapper script can tell "free space and rerun" apart.
WRITE_FAILED = 74


class UsageError(Exception):
    """Bad input: an unknown name, an out-of-range value, missing data, a
    malformed config.  The message names the value and what is accepted."""


class InvalidResult(RuntimeError):
    """A method broke the protocol (changed the original in place, returned
    another architecture, reached for the test data): its run is invalid."""
