"""Atomic writes (a reader sees the old file or the new one, never half of one) and writability checks."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | Path, binary: bool = False, newline: str | None = None) -> Iterator[IO]:
    """A file to write ``path`` through: a temporary file beside it, renamed over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # the umask applies
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": newline})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


def check_writable(path: str | Path, what: str, make_folder: bool = False) -> Path:
    """``path`` as a Path if a file can be written there (a probe file is made and removed), else ValueError.

    ``what`` names the option in the message (e.g. ``--out``); ``make_folder`` creates a missing folder.
    """
    path = Path(path)
    if str(path) in ("", "."):
        raise ValueError(f"{what}: give a file name")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a directory; give a file name")
    folder = path.parent
    if not folder.is_dir():
        if not make_folder:
            raise FileNotFoundError(f"{what}: folder {str(folder)!r} does not exist; create it first")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"{what}: cannot create folder {str(folder)!r} ({err.strerror or err}); "
                             "choose a writable path") from None
    probe = folder / f".{path.name}.write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{what}: cannot write in {str(folder)!r} ({err.strerror or err}); choose a writable "
                         "path") from None
    return path


def path_problem(path: str | Path, want: str = "file") -> str | None:
    """What is wrong with ``path`` as a ``want`` (``file`` or ``folder``), in words; None when it is one.

    Names the case a user meets: "does not exist", "is a symlink loop", "is a broken symlink",
    "is a folder" (a file was wanted), "is a file" (a folder was wanted), "cannot be read".
    """
    path = Path(path).expanduser()
    try:
        path.stat()
    except OSError as err:
        if path.is_symlink():
            return "is a symlink loop" if err.errno == 40 else "is a broken symlink (its target does not exist)"
        if err.errno == 40:  # ELOOP in a parent folder
            return "is inside a symlink loop"
        if err.errno == 13:
            return "cannot be read (permission denied)"
        return "does not exist"
    if want == "file" and path.is_dir():
        return "is a folder"
    if want == "folder" and not path.is_dir():
        return "is a file"
    if want == "file" and not path.is_file():
        return "is not a regular file"
    return None


def require_path(path: str | Path, what: str, fix: str, want: str = "file") -> Path:
    """``path`` if it is a readable ``want``; else ValueError ``"<what> '<path>' <problem>; <fix>"``."""
    problem = path_problem(path, want)
    if problem is not None:
        raise ValueError(f"{what} {str(path)!r} {problem}; {fix}")
    return Path(path).expanduser()
