"""The output folder of a run: one run at a time, nothing left by a failed
start, and write failures named as such.

Two runs into one ``--out`` would each commit their files, and the later
commit would silently replace the earlier one's outputs (or, interleaved, mix
them). Every command that writes into a folder holds it with
:class:`OutputFolder` from before its first check of the folder until after
its last commit; a second run finds it held and stops with
:class:`FolderInUseError`, naming the holder. The lock is ``flock(2)`` on the
folder itself: the kernel drops it when the holder exits, however it exits,
so a killed run leaves no stale lock, and no lock file sits among the outputs.
An ``OSError`` that is a failure to write there (a full disk, a read-only
place) leaves the block as an :class:`~cotsieve.errors.OutputWriteError`.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "out"
    >>> with OutputFolder(folder):
    ...     try:
    ...         OutputFolder(folder).__enter__()
    ...     except FolderInUseError as err:
    ...         print(f"pid {os.getpid()} " in str(err))
    True
    >>> with OutputFolder(folder):  # released: the next run takes it
    ...     pass
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import OutputExistsError, OutputWriteError, UsageError

# Failures of a write that say nothing about the input.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
_LOCK_LINE = re.compile(r"FLOCK\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)")


class FolderInUseError(OutputExistsError):
    """Another run holds the output folder."""


class OutputFolder:
    """Create ``folder`` if needed and hold it for one run; on a failed run,
    remove it again if this run created it and left it empty."""

    def __init__(self, folder: Union[str, Path]):
        self.folder = Path(folder)
        self._fd: Optional[int] = None
        self._created = False

    def __enter__(self) -> OutputFolder:
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"--out {self.folder} is a file, not a folder")
        try:
            self.folder.mkdir(parents=True)
            self._created = True
        except FileExistsError:
            pass
        except OSError as err:
            raise write_error(err, self.folder) from None
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._remove_if_created_and_empty()
            raise FolderInUseError(f"{self.folder} is in use by another run ({_holder(self.folder)}); "
                                   f"wait for it to finish, or choose another --out") from None
        self._fd = fd
        return self

    def __exit__(self, kind: Optional[type[BaseException]], error: Optional[BaseException], *rest: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        if kind is not None:
            self._remove_if_created_and_empty()
        if isinstance(error, OSError):
            named = write_error(error, self.folder)
            if named is not error:
                raise named from error

    def _remove_if_created_and_empty(self) -> None:
        if self._created:
            try:
                self.folder.rmdir()  # fails, as it should, once anything is in it
            except OSError:
                pass


def _holder(folder: Path) -> str:
    """``pid N: command`` of the process that holds ``folder``, from ``/proc/locks``."""
    stat = os.stat(folder)
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for match in map(_LOCK_LINE.search, locks):
                if match and (int(match[2], 16), int(match[3], 16), int(match[4])) == \
                        (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino):
                    return f"pid {match[1]}{_command_of(match[1])}"
    except OSError:
        pass
    return "its process is not visible from here"


def _command_of(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f": {command[:120]}" if command else ""


def write_error(err: OSError, folder: Path) -> Union[OutputWriteError, OSError]:
    """``err`` as an :class:`OutputWriteError` when it is a failure to write the
    outputs in ``folder`` (a full disk, a read-only or forbidden place);
    otherwise ``err`` itself, which then says something about an input."""
    name = Path(err.filename) if isinstance(err.filename, (str, os.PathLike)) else None
    inside = name is not None and (name == folder or folder in name.parents)
    if err.errno in _WRITE_ERRNOS or (inside and err.errno != errno.ENOENT):
        where = name if inside else folder
        return OutputWriteError(f"cannot write {where}: {err.strerror or err}")
    return err
