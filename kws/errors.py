"""Errors a user can cause. The CLI prints them as one line and exits with `exit_code`."""


class KwsError(Exception):
    """Something went wrong that is not the user's input (exit code 1)."""

    exit_code = 1


class UserError(KwsError):
    """Bad usage or bad input: a file, an option, a checkpoint (exit code 2)."""

    exit_code = 2
