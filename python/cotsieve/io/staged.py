"""Where a run's outputs go: a local folder (:class:`~cotsieve.io.outdir.OutputFolder`,
each file committed by an atomic rename), or a folder of a store that
fsspec reaches by URL (``s3://bucket/run/``, ``memory://run``).

A store is written last. The run writes its outputs into a local temporary
folder as it would anywhere, and only when every output is complete does
:meth:`StagedFolder.publish` upload them, in two steps: every output to a
temporary key beside its place (``.NAME.PID.tmp``), and only when all of them
are up, each moved onto its name. On a store that renames (a local or
network file system) the move is atomic; on an object store (S3, GCS,
Azure) it is a server-side copy, and an object appears at its key only
whole, never half-written. A failed upload leaves the store as it was. The
set of outputs is not atomic on a store: the moves happen one after
another, ``summary.json`` last, and an old ``summary.json`` is deleted
before the first move, so a ``summary.json`` always describes the files
beside it; a failed move says which outputs it had already replaced. After
any failure the finished outputs stay in the local folder, which the error
names. A store has no lock: two runs into one URL are not kept apart as two
runs into one local folder are.

Example:
    >>> import fsspec, os
    >>> with output_folder("memory://staged-doc/run", force=False) as folder:
    ...     local = folder.local / "summary.json"
    ...     _ = local.write_text("{}")
    ...     folder.publish([local])
    >>> fsspec.filesystem("memory").cat("/staged-doc/run/summary.json")
    b'{}'
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from ..errors import OutputExistsError, OutputWriteError
from .locations import filesystem, is_url, local_path
from .outdir import OutputFolder


class LocalFolder:
    """A local ``--out``, held for the run (:class:`OutputFolder`); its outputs are in place once committed."""

    def __init__(self, folder: Union[str, Path]):
        self.local = Path(local_path(str(folder)))
        self._held = OutputFolder(self.local)

    def __enter__(self) -> LocalFolder:
        self._held.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._held.__exit__(*exc)

    def shown(self, path: Path) -> str:
        return str(path)

    def check_free(self, paths: Sequence[Path], inputs: Sequence[str]) -> None:
        """Nothing to check beyond what ``plan_outputs`` checks locally."""

    def publish(self, paths: Sequence[Path]) -> None:
        """Nothing to do: local outputs are committed in place."""


class StagedFolder:
    """A ``--out`` at a URL: written to a local temporary folder, then published (module docstring)."""

    def __init__(self, url: str, force: bool):
        self.url = url.rstrip("/")
        self.force = force
        self.fs, self.root = filesystem(self.url)
        self.local = Path()
        self._keep_local = False  # a failed publish leaves the finished outputs here

    def __enter__(self) -> StagedFolder:
        self.local = Path(tempfile.mkdtemp(prefix="cotsieve-out-"))
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._keep_local:
            shutil.rmtree(self.local, ignore_errors=True)

    def shown(self, path: Path) -> str:
        return f"{self.url}/{path.name}"

    def _key(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def check_free(self, paths: Sequence[Path], inputs: Sequence[str]) -> None:
        """Refuse, before the run, an output that would replace an input, or an existing one without ``force``."""
        for path in paths:
            if self.shown(path) in inputs:
                raise OutputExistsError(f"{self.shown(path)} is an input; choose another --out")
            if not self.force and self._store("look at", path.name, self.fs.exists, self._key(path.name)):
                raise OutputExistsError(f"{self.shown(path)} exists; pass --force (force=True) to overwrite it")

    def publish(self, paths: Sequence[Path]) -> None:
        """Upload every output to its temporary key, then move each onto its
        name, ``summary.json`` last and an old one deleted before the first
        move (module docstring)."""
        order = [p for p in paths if p.name != "summary.json"] + [p for p in paths if p.name == "summary.json"]
        staged: list[str] = []  # temporary keys that may exist
        moved: list[str] = []
        try:
            for path in order:
                staged.append(self._temp_key(path.name))
                self._store("write", path.name, self.fs.put_file, str(path), staged[-1])
            if any(p.name == "summary.json" for p in order) and \
                    self._store("look at", "summary.json", self.fs.exists, self._key("summary.json")):
                self._store("delete", "summary.json", self.fs.rm, self._key("summary.json"))
            for path in order:
                self._store("write", path.name, self.fs.mv, self._temp_key(path.name), self._key(path.name))
                moved.append(path.name)
        except OutputWriteError as err:
            for key in staged[len(moved):]:
                self._remove_quietly(key)
            self._keep_local = True
            done = f"already replaced: {', '.join(moved)}" if moved else "nothing at the URL was replaced"
            raise OutputWriteError(f"{err}; {done}; the finished outputs are in {self.local}") from err

    def _temp_key(self, name: str) -> str:
        return self._key(f".{name}.{os.getpid()}.tmp")

    def _remove_quietly(self, key: str) -> None:
        try:
            self.fs.rm(key)
        except Exception:  # the upload failed before the key existed, or the store is gone
            pass

    def _store(self, what: str, name: str, call: Any, *args: Any) -> Any:
        """``call(*args)`` on the store; any failure of the store is an :class:`OutputWriteError` naming the URL."""
        try:
            return call(*args)
        except Exception as err:  # a store client raises its own errors (botocore's, aiohttp's), not only OSError
            raise OutputWriteError(f"cannot {what} {self.url}/{name}: {type(err).__name__}: {err}") from err


def output_folder(out: Union[str, Path], force: bool) -> Union[LocalFolder, StagedFolder]:
    """The place of a run's outputs: a :class:`StagedFolder` for a URL, else a :class:`LocalFolder`."""
    return StagedFolder(str(out), force) if is_url(str(out)) else LocalFolder(out)
