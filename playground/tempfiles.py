"""One temp folder per process, and what keeps it bounded (issue 19).

Every file the app writes goes under ``root()``: ``PLAYGROUND_TEMP_DIR`` if set (the deploy script
gives each replica its own), else ``<system temp>/playground-<pid>``. Inside it:

    outputs/   the tabs' downloads (JSON, CSV, PNG), one fresh folder per result: ``output_folder``
    gradio/    Gradio's cache (``GRADIO_TEMP_DIR``): uploads and the images it serves
    tmp/       Python's ``tempfile`` default for the server process (``python -m playground``)

``Cleaner`` deletes, every ``PLAYGROUND_TEMP_SWEEP_S``, files older than
``PLAYGROUND_TEMP_MAX_AGE_S`` (longer than a session, so a file a user may still download stays),
then the oldest files while the folder is over ``PLAYGROUND_TEMP_MAX_MB``, but never a file younger
than ``PLAYGROUND_TEMP_KEEP_S`` (a result being downloaded right now). At exit the three
sub-folders are emptied: no session outlives its process. Only these sub-folders are ever
touched, so pointing ``PLAYGROUND_TEMP_DIR`` at a folder holding other files deletes none of them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from playground import settings

SUBFOLDERS = ("outputs", "gradio", "tmp")
_lock = threading.Lock()
_root: Path | None = None


def root() -> Path:
    """This process's temp folder (created on first use, emptied at exit)."""
    global _root
    with _lock:
        if _root is None:
            chosen = os.environ.get("PLAYGROUND_TEMP_DIR", "").strip()
            _root = Path(chosen).expanduser() if chosen else Path(tempfile.gettempdir()) / f"playground-{os.getpid()}"
            for name in SUBFOLDERS:
                (_root / name).mkdir(parents=True, exist_ok=True)
            atexit.register(empty, _root, remove_root=not chosen)
        return _root


def output_folder(prefix: str) -> Path:
    """A new, empty folder for one result's files, under ``root()/outputs``."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root() / "outputs"))


def configure_process() -> Path:
    """For the server process, before Gradio is imported: Gradio's cache (unless
    ``GRADIO_TEMP_DIR`` is already set) and Python's ``tempfile`` default go under ``root()``."""
    folder = root()
    os.environ.setdefault("GRADIO_TEMP_DIR", str(folder / "gradio"))
    tempfile.tempdir = str(folder / "tmp")
    return folder


@dataclass
class Sweep:
    deleted_files: int
    deleted_bytes: int
    kept_files: int
    kept_bytes: int


def _walk(folders: list[Path]) -> tuple[list[tuple[float, int, Path]], dict[Path, float]]:
    """Every file as (mtime, size, path), oldest first, and every sub-folder's mtime."""
    files, dirs = [], {}
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            path = Path(dirpath)
            try:
                dirs[path] = path.stat().st_mtime
            except OSError:
                continue
            for name in names:
                try:
                    info = (path / name).lstat()
                except OSError:  # deleted meanwhile
                    continue
                files.append((info.st_mtime, info.st_size, path / name))
    return sorted(files, key=lambda item: item[0]), dirs


def sweep(folder: Path, max_age_s: float, max_bytes: int, keep_s: float, now: float | None = None) -> Sweep:
    """Delete files under ``folder``'s sub-folders older than ``max_age_s``, then the oldest ones
    while the total is over ``max_bytes``, never one younger than ``keep_s``; then the folders
    left empty that were not created (or changed) in the last ``keep_s``."""
    now = time.time() if now is None else now
    subfolders = [folder / name for name in SUBFOLDERS if (folder / name).is_dir()]
    files, dirs = _walk(subfolders)
    total = sum(size for _, size, _ in files)
    deleted = deleted_bytes = 0
    for mtime, size, path in files:  # oldest first
        age = now - mtime
        if age <= max_age_s and (total <= max_bytes or age < keep_s):
            break
        try:
            path.unlink()
        except OSError:
            continue
        total, deleted, deleted_bytes = total - size, deleted + 1, deleted_bytes + size
    for path in sorted(dirs, key=lambda p: len(p.parts), reverse=True):  # deepest first
        if path not in subfolders and now - dirs[path] >= keep_s:
            try:
                path.rmdir()  # only if empty
            except OSError:
                pass
    return Sweep(deleted, deleted_bytes, len(files) - deleted, total)


def folder_bytes(folder: Path) -> int:
    return sum(size for _, size, _ in _walk([folder / name for name in SUBFOLDERS])[0])


def empty(folder: Path, remove_root: bool = False) -> None:
    """Delete everything in ``folder``'s sub-folders (and the folder itself if ``remove_root``)."""
    for name in SUBFOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)
    if remove_root:
        try:
            folder.rmdir()
        except OSError:
            pass


class Cleaner:
    """A daemon thread that sweeps ``root()`` now and every ``PLAYGROUND_TEMP_SWEEP_S``."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or root()
        self.stopped = threading.Event()
        self.sweeps = 0
        self.last: Sweep | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="playground-temp-cleaner")

    def start(self) -> Cleaner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while True:
            self.last = sweep(self.folder, settings.TEMP_MAX_AGE_S, int(settings.TEMP_MAX_MB * 1e6),
                              settings.TEMP_KEEP_S)
            self.sweeps += 1
            if self.stopped.wait(settings.TEMP_SWEEP_S):
                return
