"""Atomic writes: a reader, or a process killed at any moment, finds the previous version or the new one, never a mix.

Folders are built in a `.tmp-` staging folder beside their destination and put in its place by one rename;
files are written beside their destination and renamed over it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING_PREFIX = ".tmp-"
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


@contextmanager
def replaced_folder(folder: str | Path, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yields a staging folder holding the entries of `folder` named in `keep`; once the block succeeds, the
    staging folder takes `folder`'s place. The kept entries are hard links (nothing is copied), so the block must
    replace files (`write_atomically`, or a new file) and never rewrite one in place: that would change the old
    version too. When the block fails, `folder` is untouched and the staging folder is removed."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(folder)
    staging.mkdir()
    try:
        for name in keep:
            if (folder / name).exists():
                link_tree(folder / name, staging / name)
        yield staging
        put_in_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old version once swapped, else the failed new one


def put_in_place(staging: Path, folder: Path) -> None:
    """Moves `staging` to `folder`; an existing `folder` ends up at `staging` (for the caller to remove).
    On Linux the two are exchanged in one atomic step; elsewhere the old folder is moved aside first, which
    leaves a moment in which `folder` does not exist."""
    if not folder.exists():
        os.rename(staging, folder)
    elif not exchange(staging, folder):
        aside = staging.with_name(staging.name + "-old")
        os.rename(folder, aside)
        os.rename(staging, folder)
        os.rename(aside, staging)


def exchange(a: Path, b: Path) -> bool:
    """Swaps two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # an old kernel, or a file system without it
        return False
    raise OSError(code, f"cannot exchange {a} and {b}: {os.strerror(code)}")


def link_tree(source: Path, destination: Path) -> None:
    """`destination` as a copy of `source` made of hard links (a plain copy where links are impossible)."""
    if source.is_dir() and not source.is_symlink():
        destination.mkdir()
        for entry in source.iterdir():
            link_tree(entry, destination / entry.name)
        return
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def write_atomically(path: str | Path, content: str | bytes) -> None:
    """Writes a file beside `path`, flushed to disk, then renames it over `path`."""
    path = Path(path)
    temporary = sibling(path)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content.encode() if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def sibling(path: Path) -> Path:
    """A new name beside `path` for its staging copy. Made with `mkdir`/`open` (not `tempfile`, whose 0700/0600
    permissions would be the folder's or file's once renamed), so it gets the permissions any new one gets."""
    return path.with_name(f"{STAGING_PREFIX}{path.name}-{uuid.uuid4().hex[:12]}")
