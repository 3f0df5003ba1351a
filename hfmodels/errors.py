"""Error messages of one line: what the CLI and the loud failures of hfmodels print."""

import os


def first_line(error: BaseException) -> str:
    """The first line of an error's message (library errors run on with advice and links), or its type's name
    when it has no message."""
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


class ModelSavedError(RuntimeError):
    """Training finished and its model is saved, but a step after it failed (card, pictures, trackers, push)."""

    def __init__(self, output_dir: str | os.PathLike, failures: str, advice: str = ""):
        self.output_dir = output_dir
        super().__init__(f"{failures}; the trained model is saved in {output_dir}{advice}")
