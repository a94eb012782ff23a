"""The error of unreadable or inconsistent dataset files."""

from __future__ import annotations


class DataFileError(ValueError):
    """A dataset file is corrupt, truncated, of the wrong kind or does not match its partner
    (images vs labels); the message names the file(s) and the fix.

    Raised in a DataLoader worker, torch re-raises it in the main process as
    ``DataFileError("Caught DataFileError in DataLoader worker process N.\\nOriginal Traceback
    ...")``; the original one-line message is recovered from that text, so the CLI still prints
    one clear line.
    """

    def __init__(self, message: str = "") -> None:
        if message.startswith("Caught ") and "\nOriginal Traceback" in message:
            last = message.rstrip().rsplit("\n", 1)[-1]
            _, sep, original = last.partition(f"{type(self).__name__}: ")
            if sep:
                message = f"{original} (in a data loader worker)"
        super().__init__(message)
