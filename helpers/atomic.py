"""Output folders that are complete or absent: write into a temporary sibling, then rename it into place.

    with staged(out, markers=(MANIFEST,)) as tmp:    # refuses an ``out`` the course did not write
        (tmp / "a.txt").write_text("…")
        write_manifest(tmp, "example")
    # here ``out`` is the new folder; killed before this line, ``out`` is still the old one

A kill at any moment leaves the old folder or the new one at ``out``, never a mix. The
temporary sibling ``.<name>.partial-<pid>-<random>`` a killed process leaves behind is
removed by the next write to the same folder. Only folders that are absent, empty or carry
one of the course's marker files are ever replaced (``check_owned``).
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

MANIFEST = "course_manifest.json"
COURSE = "qwen3-sft-course"


def is_owned(folder: str | Path, markers: tuple[str, ...] = (MANIFEST,)) -> bool:
    """True when ``folder`` is absent, an empty folder, or holds one of the course's ``markers``."""
    folder = Path(folder)
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    return not any(folder.iterdir()) or any((folder / m).is_file() for m in markers)


def check_owned(folder: str | Path, markers: tuple[str, ...] = (MANIFEST,), what: str = "output folder") -> Path:
    """``folder`` if the course may write it (``is_owned``), else ``FileExistsError`` naming it."""
    folder = Path(folder)
    if not is_owned(folder, markers):
        kind = "a file" if folder.is_file() else "a folder with files the course did not write"
        raise FileExistsError(f"{what} {folder} is {kind} (none of {list(markers)} in it): not deleting it; "
                              f"choose an empty or new folder")
    return folder


def write_manifest(folder: str | Path, kind: str, **fields) -> dict:
    """Write ``course_manifest.json`` (the course's mark of ownership and what was built) into ``folder``."""
    manifest = {"course": COURSE, "kind": kind, **fields}
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1, default=str),
                                         encoding="utf-8")
    return manifest


def read_manifest(folder: str | Path) -> dict | None:
    """The folder's course manifest, or None when it has none or it is not the course's."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("course") == COURSE else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(target: str | Path) -> list[Path]:
    """Remove the temporary siblings of ``target`` that processes no longer running left behind."""
    target = Path(target)
    removed = []
    for kind in ("partial", "old"):
        for leftover in glob.glob(glob.escape(str(target.parent / f".{target.name}.{kind}-")) + "*"):
            pid = Path(leftover).name.rsplit(f".{kind}-", 1)[1].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(Path(leftover))
    return removed


def partial_folder(target: str | Path) -> Path:
    """A new empty temporary sibling of ``target`` (same file system, so the final rename is atomic)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep(target)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_folder(src: str | Path, target: str | Path) -> Path:
    """Put the folder ``src`` at ``target`` as a whole, replacing what was there; returns ``target``."""
    src, target = Path(src), Path(target)
    if not target.exists():
        os.rename(src, target)
    elif _exchange(src, target):
        shutil.rmtree(src)  # src now holds the old folder
    else:  # two renames: for an instant ``target`` is absent, never mixed
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
        os.rename(src, target)
        shutil.rmtree(old)
    return target


def publish_files(src: str | Path, target: str | Path, last: str) -> Path:
    """Move every file of ``src`` into ``target`` (kept: what else ``target`` holds), ``last`` last.

    ``last`` is the file that makes ``target`` count as complete (an adapter's
    ``adapter_config.json``): it is removed first and moved in last, so a kill in between
    leaves a folder that reads as having no adapter, never a mix of two.
    """
    src, target = Path(src), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / last).unlink(missing_ok=True)
    for f in sorted(src.iterdir(), key=lambda p: p.name == last):
        if (target / f.name).is_dir():
            shutil.rmtree(target / f.name)
        os.replace(f, target / f.name)
    src.rmdir()
    return target


@contextmanager
def _removed_on_error(tmp: Path) -> Iterator[Path]:
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def staged_files(target: str | Path, last: str) -> Iterator[Path]:
    """A temporary sibling to write into whose files join ``target`` when the block ends (``publish_files``).

    For a folder that also holds things written by others (a trainer's ``checkpoint-*``):
    those stay, and ``last`` decides whether the folder reads as complete.
    """
    with _removed_on_error(partial_folder(target)) as tmp:
        yield tmp
    publish_files(tmp, target, last)


@contextmanager
def staged(target: str | Path, markers: tuple[str, ...] = (MANIFEST,), what: str = "output folder") -> Iterator[Path]:
    """A temporary sibling to write into, renamed to ``target`` when the block ends without error.

    ``target`` must be absent, empty or carry one of ``markers`` (``check_owned``); on an
    error the temporary folder is removed and ``target`` is left as it was.
    """
    target = check_owned(target, markers, what)
    with _removed_on_error(partial_folder(target)) as tmp:
        yield tmp
    replace_folder(tmp, target)
