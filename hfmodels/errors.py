"""Error messages of one line: what the CLI and the loud failures of hfmodels print."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (library errors run on with advice and links), or its type's name
    when it has no message."""
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__
