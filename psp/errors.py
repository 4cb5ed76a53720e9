"""The one error type the command line turns into a one-line message and exit code 2."""


class UsageError(ValueError):
    """Bad user input: the message names the bad value and what is accepted."""


def choice_error(what: str, value: object, accepted: list[str] | tuple[str, ...]) -> UsageError:
    """A uniform 'unknown X' error so every bad name reads the same way."""
    shown = ", ".join(accepted) if len(accepted) <= 30 else ", ".join(list(accepted)[:30]) + ", ..."
    return UsageError(f"unknown {what} {value!r}; accepted: {shown}")
