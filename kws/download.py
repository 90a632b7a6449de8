"""Fetching archives: pooch downloads, verifies sha256 and caches; we extract safely.

Extraction goes to a `.partial` folder first, checks every member before writing any, and marks
the result complete only at the end, so an interrupted run is never mistaken for a finished one.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import KwsError, UserError

COMPLETE_MARKER = ".kws-complete"


@dataclass(frozen=True)
class Remote:
    """A file published at `url` whose bytes must hash to `sha256`."""

    url: str
    sha256: str
    size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


class _RichBar:
    """The progress-bar object pooch's HTTPDownloader drives (total / update / reset / close)."""

    def __init__(self, description: str) -> None:
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), transient=False)
        self._description = description
        self._task = None
        self.total = 0

    def update(self, n: int) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=self.total or None)
        self._progress.advance(self._task, n)

    def reset(self) -> None:
        if self._task is not None:
            self._progress.reset(self._task, total=self.total or None)

    def close(self) -> None:
        self._progress.stop()


def fetch(remote: Remote, cache_dir: Path, progress: bool = True) -> Path:
    """Download `remote` into `cache_dir` unless a verified copy is already there."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # our progress bar already says what is downloading
    cache_dir.mkdir(parents=True, exist_ok=True)
    downloader = pooch.HTTPDownloader(progressbar=_RichBar(f"Downloading {remote.filename}") if progress else False,
                                      timeout=30)
    try:
        path = pooch.retrieve(remote.url, known_hash=f"sha256:{remote.sha256}", fname=remote.filename,
                              path=cache_dir, downloader=downloader, progressbar=False)
    except requests.RequestException as e:
        reason = type(e).__name__ if isinstance(e, requests.ConnectionError) else str(e)
        raise KwsError(f"cannot download {remote.url} ({reason})") from None
    except ValueError as e:
        if "hash" in str(e).lower():
            raise KwsError(f"checksum mismatch for {remote.url}: the download was removed; "
                           "check --url/--sha256 or try again") from None
        raise
    return Path(path)


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def extract_tar(archive: Path, target: Path) -> Path:
    """Extract `archive` into `target` (replacing an incomplete one); refuse unsafe members."""
    if is_complete(target):
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            partial.mkdir(parents=True)
            tar.extractall(partial, members=members, filter="data")
    except tarfile.TarError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise UserError(f"{archive}: not a readable tar archive ({e})") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    (target / COMPLETE_MARKER).write_text(archive.name + "\n")
    return target


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise UserError(f"{archive}: refusing to extract {name!r}: it points outside the target folder")
    if member.isdev() or member.isfifo():
        raise UserError(f"{archive}: refusing to extract {name!r}: device or FIFO entries are not data")
    if member.issym() or member.islnk():
        link = Path(member.linkname)
        resolved = (Path(name).parent / link) if member.issym() else link
        if link.is_absolute() or ".." in Path(os.path.normpath(resolved)).parts:
            raise UserError(f"{archive}: refusing to extract {name!r}: its link points outside the target folder")
