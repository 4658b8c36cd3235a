"""File helpers that need nothing but the standard library: atomic writes and umask modes.

Kept apart from `longthought.io` (which validates tables and so imports pandas and pandera) so
that light processes, such as the request collector holding 100,000 replies, do not pay ~90 MB
of pandas for a chmod.

Files and directories written here get the modes the user's umask gives a plain `open()` /
`mkdir` (0644 / 0755 under umask 022, 0664 / 0775 under 002), not the private 0600 / 0700 that
`mkstemp` / `mkdtemp` give their temporaries: results are shared on cluster filesystems.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from `open()` under the current umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode a new directory gets from `mkdir` under the current umask (0755 under 022)."""
    return 0o777 & ~current_umask()


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """`mkdtemp` in `parent`, opened up to the umask's mode: it is renamed into place as an output
    (mkdtemp's 0700 would leave the result unreadable for colleagues)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    tmp.chmod(dir_mode())
    return tmp


def apply_umask(root: str | os.PathLike[str]) -> None:
    """Give `root` and everything under it the umask's modes, before it is renamed into place.

    For directories written by libraries that create private files: safetensors writes model
    weights as 0600, mkdtemp makes 0700 directories.
    """
    root = Path(root)
    files, dirs = file_mode(), dir_mode()
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(dirs if path.is_dir() else files)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    The file lands with the umask's mode (mkstemp's temporary is 0600), whether the block wrote
    into the temporary file or replaced it (e.g. a library that writes a new file at the path).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            tmp_path.chmod(file_mode())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (provenance and checkpoint fingerprints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
