"""What a dataset build wrote, so ``load_splits`` can refuse a half-written or mixed one.

``course_manifest.json`` (written last, into the build's temporary folder) records the
build id, the settings (seed, weights, strategy…), a SHA-256 of every source file read and
of every file of the splits; each split folder carries the build id in ``course_build.json``.
``verify`` checks all of it and names the folder and the command that rebuilds it.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from .. import atomic, names

KIND = "dataset"
SPLIT_MARK = "course_build.json"
SPLITS = {"train": "train.jsonl", "validation": "val.jsonl"}
REPORT = "report.json"  # written after the build too (token statistics): not part of the check


def new_build_id() -> str:
    """A fresh id for one build."""
    return uuid.uuid4().hex[:16]


def sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents, in name order)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def mark_split(folder: Path, split: str, build_id: str, rows: int) -> None:
    """Write the build id into one split's folder."""
    (folder / SPLIT_MARK).write_text(json.dumps({"build_id": build_id, "split": split, "rows": rows}),
                                     encoding="utf-8")


def write(folder: Path, build_id: str, settings: dict, sources: dict[str, str], rows: dict[str, int]) -> dict:
    """The manifest of a finished build in ``folder``: settings, source digests and every split file's digest."""
    files = {}
    for split, jsonl in SPLITS.items():
        for f in sorted((folder / split).iterdir()) + [folder / jsonl]:
            files[str(f.relative_to(folder))] = {"bytes": f.stat().st_size, "sha256": sha256(f)}
    return atomic.write_manifest(folder, KIND, build_id=build_id, settings=settings, sources=sources, rows=rows,
                                 files=files)


def rebuild_hint(folder: Path) -> str:
    """The command that rebuilds the dataset in ``folder``."""
    return f"rebuild it with `python -m helpers.data --out {folder}` (or run notebook 04)"


def verify(folder: str | Path) -> dict:
    """The manifest when ``folder`` holds one complete build; else ``ValueError`` saying what is wrong."""
    folder = Path(folder)
    manifest = atomic.read_manifest(folder)
    if manifest is None or manifest.get("kind") != KIND:
        why = (f"has no readable {atomic.MANIFEST}" if not (folder / atomic.MANIFEST).is_file()
               else f"has a {atomic.MANIFEST} that is unreadable or not a dataset's")
        raise ValueError(f"the dataset at {folder} {why}: it is half-written, built by another version, or not a "
                         f"course build; {rebuild_hint(folder)}")
    problems = []
    for split in SPLITS:
        mark = folder / split / SPLIT_MARK
        try:
            carried = json.loads(mark.read_text(encoding="utf-8")).get("build_id")
        except (OSError, ValueError, AttributeError):
            carried = None
        if carried != manifest["build_id"]:
            problems.append(f"{split}/ carries build {carried!r}, the manifest says {manifest['build_id']!r}")
    listed = manifest.get("files", {})
    # ``Dataset.map`` on a loaded split caches its result beside it (``cache-<fingerprint>.arrow``)
    present = {str(p.relative_to(folder)) for s in SPLITS for p in (folder / s).glob("*")
               if p.is_file() and not (p.name.startswith("cache-") and p.suffix == ".arrow")}
    problems += [f"{name}: not written by this build" for name in sorted(present - set(listed))]
    for name, want in listed.items():
        f = folder / name
        if not f.is_file():
            problems.append(f"{name}: missing")
        elif f.stat().st_size != want["bytes"] or sha256(f) != want["sha256"]:
            problems.append(f"{name}: changed since the build (size or SHA-256 differs)")
    if problems:
        raise ValueError(f"the dataset at {folder} is incomplete or mixes builds ({'; '.join(problems[:3])}"
                         f"{'; …' if len(problems) > 3 else ''}); {rebuild_hint(folder)}")
    return manifest


def is_unmarked_build(folder: Path) -> bool:
    """True when ``folder`` holds a course export without a manifest: its ``report.json`` has the report's keys."""
    try:
        report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and {"config", "steps", "dropped"} <= set(report)


def check_writable(path: str | Path) -> Path:
    """``path`` when a build may replace it (new, empty, or a course build); else a clear error."""
    path = names.check_path(path, "dataset folder")
    if not is_unmarked_build(path):
        atomic.check_owned(path, what="dataset folder")
    return path
