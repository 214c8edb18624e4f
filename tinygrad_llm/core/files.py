"""Writing a file so that readers see the old version or the new one, never half of one (lesson 07).

Every file the library writes (checkpoints, tokenizer files, token arrays, their ``meta.json``)
goes through ``atomic_write``: the bytes go to a hidden temporary file in the same folder, are
flushed to disk, and the temporary file is then renamed over the target (``os.replace`` is atomic
on one file system). An interrupted save leaves the previous file untouched.

Two details make this behave like an ordinary ``open(path, "w")``:

* the file gets the permissions of a new file (``0o666`` minus the umask), where ``mkstemp``
  would give ``0o600``;
* a save killed half-way leaves its temporary file behind; the next successful save of the same
  file removes such orphans (temporary files whose writing process is gone), so they never pile up.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import IO, Iterator

# .<name>.<pid>-<random>.tmp : the pid tells a live writer's file from an orphan
_TEMP_SUFFIX = ".tmp"


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_SUFFIX}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive
        return True
    return True


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that interrupted saves of ``path`` left behind; returns them.

    A temporary file whose writer is still running (another process saving the same file right
    now, or this process's own save in progress) is kept. Names written by older versions of this
    library (``.<name>.<random>.tmp``, ``.<name>.<pid>.tmp``) are recognised too."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)(?:-[0-9a-f]+)?|[A-Za-z0-9_]{8})"
                         + re.escape(_TEMP_SUFFIX) + "$")
    stem_pattern = re.compile(re.escape(f".{path.stem}.") + r"(\d+)\.tmp" + re.escape(path.suffix) + "$")
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.match(candidate.name) or (path.suffix and stem_pattern.match(candidate.name))
        if not match:
            continue
        pid = match.group(1)
        if pid is not None and (int(pid) == os.getpid() or _process_alive(int(pid))):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is ``"wb"`` (binary) or ``"w"`` (text, UTF-8 with ``\\n`` line ends by default).
    On an exception the temporary file is removed and ``path`` is left as it was.

        with atomic_write("run/meta.json", "w") as f:
            f.write("{}")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a new file: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    # os.open with 0o666 lets the umask decide the permissions, as for any new file
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if mode == "w":
            file = os.fdopen(handle, "w", encoding=encoding or "utf-8", newline="\n")
        else:
            file = os.fdopen(handle, "wb")
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    remove_orphans(path)


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """``Path(path).write_bytes(data)``, atomically (see ``atomic_write``)."""
    with atomic_write(path, "wb") as file:
        file.write(data)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """``Path(path).write_text(text)`` in UTF-8 with ``\\n`` line ends, atomically."""
    with atomic_write(path, "w") as file:
        file.write(text)
