"""Carrying the committed study to a lent GPU machine and its new runs back.

The device tool sends the working tree, at most 64 MiB of it, and the committed study outgrows that (a run dir
is about 1 MB, mostly its test predictions). So, here, before the call:

    python -m fmnist.study_transfer pack

moves `multirun/study/` into the ignored `.aside/` and writes the ignored `.devstudy/`: the summary.json of
every run dir, alone (a few MB for the whole study). That is all a run needs to be skipped there as finished.
The runs that trained a cell several presets share also carry their results (about 1 MB each,
`shared_originals`), so that a preset reaching such a cell in a later session copies it instead of training it.
The device call carries `.devstudy`; `scripts/device_session.sh study` puts it in place, notes every summary
(`manifest`), runs the study and archives the run dirs that finished in the session (`archive`, without
checkpoints). Here, after the call:

    python -m fmnist.study_transfer unpack DIR_OR_PARTS...

moves `multirun/study/` back and adds the run dirs of the returned archive; a run dir already finished here is
never replaced. `make study-pack` and `make study-unpack PARTS=...` do the same.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import zlib
from pathlib import Path

from fmnist.errors import FmnistError
from fmnist.train.renumber import move_to_jobs, run_dirs, split_run_name
from fmnist.train.run_dir import (CHECKPOINT_DIR, CLAIMS_DIR, LOCK_FILE, SUMMARY_FILE, is_busy, is_finished,
                                  read_summary)

STUDY = Path("multirun") / "study"
ASIDE = Path(".aside")
KIT = Path(".devstudy")
ARCHIVE = "study.tar.gz"
PART_BYTES = 15 * 2**20  # the device returns files of at most 16 MiB
#: Never archived: checkpoints (tens of MB each, not committed), the pool launcher's worker files, the run dirs'
#: lock files (run_dir.LOCK_FILE) and the study's claims on shared cells (run_dir.CLAIMS_DIR).
NOT_ARCHIVED = frozenset({CHECKPOINT_DIR, ".pool", LOCK_FILE, CLAIMS_DIR})


#: Not carried with a shared original's results: what reuse never copies, and checkpoints.
KIT_SKIPS = frozenset({SUMMARY_FILE, CHECKPOINT_DIR, "train.log", "wandb"})


def shared_originals(summaries: list[Path]) -> list[Path]:
    """The run dirs (of `summaries`' summary.json files) that trained a cell other jobs of the study share: a
    completed original whose computation more than one study job has. A session copies them instead of training
    the cell again (trainer.reuse_identical), but only from a run dir that holds their results, not a bare summary.
    Composes the study's jobs only when there is a completed original (seconds)."""
    originals = []
    for path in summaries:
        summary = read_summary(path.parent) or {}
        if (summary.get("status") == "completed" and not summary.get("reused_from")
                and isinstance(summary.get("config"), dict)):
            originals.append((path.parent, summary["config"]))
    if not originals:
        return []
    from fmnist.study import ANY_DATA, computation_counts, preset_jobs, stage_presets
    from fmnist.train.reuse import computation_key

    counts = computation_counts({name: preset_jobs(name) for name in stage_presets()}) or {}
    return [run for run, config in originals if counts.get(computation_key(config, ANY_DATA), 0) > 1]


def _summaries(study: Path) -> list[Path]:
    return sorted(study.glob(f"*/*/{SUMMARY_FILE}")) if study.is_dir() else []


def pack(repo: Path) -> int:
    """Move the committed study aside and write the kit of its summaries; returns the number of run dirs."""
    study, aside, kit = repo / STUDY, repo / ASIDE / STUDY, repo / KIT
    if aside.exists():
        raise FmnistError(f"{aside} already holds a packed study: run `python -m fmnist.study_transfer unpack` "
                          f"(with the returned archive, if any) before packing again")
    if kit.exists():
        shutil.rmtree(kit)
    runs = _summaries(study)
    for summary in runs:
        target = kit / summary.relative_to(repo)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(summary, target)
    for run in shared_originals(runs):  # their results too, so that the session can copy them (reuse_identical)
        for item in sorted(run.iterdir()):
            target = kit / item.relative_to(repo)
            if item.name in KIT_SKIPS or item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copy2(item, target)
    (kit / STUDY).mkdir(parents=True, exist_ok=True)
    if study.exists():
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(study), str(aside))
    return len(runs)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(root: Path) -> dict[str, str]:
    """Every run dir below `root/multirun/study` (relative path) and the digest of its summary.json."""
    return {str(s.parent.relative_to(root)): _digest(s) for s in _summaries(root / STUDY)}


def finished_since(root: Path, before: dict[str, str]) -> list[str]:
    """Run dirs (relative to `root`) whose summary.json is new or changed since `before` and says the run is
    finished: completed, or diverged (a result too). Interrupted runs stay behind: they start again."""
    changed = []
    for summary_path in _summaries(root / STUDY):
        rel = str(summary_path.parent.relative_to(root))
        if before.get(rel) != _digest(summary_path) and is_finished(read_summary(summary_path.parent)):
            changed.append(rel)
    return changed


def archive(root: Path, before: dict[str, str], out: Path) -> list[Path]:
    """Write the run dirs finished since `before` as `out` (.tar.gz) in parts of PART_BYTES (`out.part-aa`,
    `-ab`, ...; join them with `cat`); returns the parts, none when nothing finished."""
    runs = finished_since(root, before)
    if not runs:
        return []
    buffer = io.BytesIO()

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if NOT_ARCHIVED & set(Path(info.name).parts) else info

    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for rel in runs:
            tar.add(root / rel, arcname=rel, filter=keep)
    data = buffer.getvalue()
    parts = []
    for i in range(0, len(data), PART_BYTES):
        n = i // PART_BYTES
        part = out.with_name(f"{out.name}.part-{chr(97 + n // 26)}{chr(97 + n % 26)}")
        try:
            part.write_bytes(data[i:i + PART_BYTES])
        except OSError as exc:
            raise FmnistError(f"cannot write {part}: {exc.strerror or exc}") from exc
        parts.append(part)
    return parts


def _parts(paths: list[Path]) -> list[list[Path]]:
    """The archives the paths name, in order: one per folder (its `study.tar.gz.part-*`), and the part files
    given one by one grouped by their folder (each device call returns one archive)."""
    archives: dict[Path, list[Path]] = {}
    for path in paths:
        in_folder = sorted(path.glob(f"{ARCHIVE}.part-*")) if path.is_dir() else [path]
        if not in_folder:  # a session that finished no run returns none; the parked study still comes back
            print(f"note: {path} holds no {ARCHIVE}.part-* files", file=sys.stderr)
        for part in in_folder:
            archives.setdefault(part.parent.resolve(), []).append(part)
    found = [part for parts in archives.values() for part in parts]
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise FmnistError(f"no such archive part (a file named {ARCHIVE}.part-xx): {', '.join(missing)}")
    return [sorted(parts, key=lambda p: p.name) for parts in archives.values()]


def _read_archive(parts: list[Path]) -> bytes:
    """The tar stream of one archive's parts, its gzip checksum and length verified: a damaged, truncated or
    missing part is refused here, before anything is extracted (tar alone would stop at the end of its data and
    never read the checksum)."""
    try:
        return gzip.decompress(b"".join(p.read_bytes() for p in parts))
    except (OSError, EOFError, zlib.error) as exc:
        raise FmnistError(f"{', '.join(map(str, parts))} do not form an intact {ARCHIVE} ({exc}): a part is "
                          f"missing, truncated or damaged") from exc


def _files(run_dir: Path) -> int:
    """How many files a run dir holds, checkpoints aside: a bare summary (the device kit's) is 1."""
    return sum(1 for p in run_dir.rglob("*") if p.is_file() and CHECKPOINT_DIR not in p.relative_to(run_dir).parts)


def _merge(source: Path, target: Path) -> tuple[int, int]:
    """Move the run dirs of study folder `source` (<preset>/<run>/) into `target`, then remove `source`. A run
    dir that `target` already holds finished is kept, unless it holds fewer files than a finished one from
    `source` (the device kit's bare summaries copied into the study, say); any other is replaced. Returns
    (moved, kept). Refused, before anything moves, while a process trains one of `target`'s run dirs that `source`
    also holds (it would go on writing into the run put there)."""
    busy = [item.relative_to(source) for item in sorted(source.glob("*/*"))
            if item.is_dir() and is_busy(target / item.relative_to(source))]
    if busy:
        raise FmnistError(f"{target / busy[0]} is being trained right now: unpack again once that training ends")
    moved = kept = 0
    for item in sorted(source.glob("*/*")):
        dest, is_run = target / item.relative_to(source), item.is_dir()
        if is_run and dest.exists():
            if is_finished(read_summary(dest)) and not (is_finished(read_summary(item))
                                                        and _files(item) > _files(dest)):
                kept += 1
                continue
            shutil.rmtree(dest)
        elif dest.exists():  # a sweep-level file (multirun.yaml): the one here stays
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(item), str(dest))
        moved += is_run
    shutil.rmtree(source)
    return moved, kept


def follow_device_renumbering(incoming: Path, study: Path) -> list[tuple[str, str]]:
    """Rename here the run dirs a session renumbered (a sweep launched with a changed grid renames `<m>_<d>` to the
    `<k>_<d>` of its job, fmnist.train.renumber): one that comes back as `<k>_<d>` while `study` holds `<m>_<d>` is
    renamed so, its links followed, before the merge, so that the run is not kept twice. Returns the
    (old, new) paths renamed, relative to `study`."""
    done: list[tuple[str, str]] = []
    for sweep in sorted(p for p in incoming.iterdir() if p.is_dir()) if incoming.is_dir() else []:
        jobs: dict[str, list[int]] = {}
        for path in run_dirs(sweep):
            number, dirname = split_run_name(path.name)
            jobs.setdefault(dirname, []).append(number)
        done += [(f"{sweep.name}/{old}", f"{sweep.name}/{new}") for old, new in move_to_jobs(study / sweep.name, jobs)]
    return done


def unpack(repo: Path, paths: list[Path]) -> tuple[int, int]:
    """Move the packed study back, then add the run dirs of the returned archive parts (files, or folders
    holding `study.tar.gz.part-*`). A run dir already finished here is never replaced. Returns (added, kept)."""
    parts = _parts(paths)  # checked before anything moves
    study, aside = repo / STUDY, repo / ASIDE / STUDY
    if aside.exists():
        if study.exists():  # written there since the pack
            _merge(aside, study)
        else:
            study.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(aside), str(study))
        _remove_empty(repo / ASIDE / STUDY.parent)
        _remove_empty(repo / ASIDE)
    streams = [(archive_parts, _read_archive(archive_parts)) for archive_parts in parts]  # all, before extracting
    added = kept = 0
    for archive_parts, data in streams:  # one device call after the other, in the order given
        incoming = repo / ASIDE / "incoming"
        shutil.rmtree(incoming, ignore_errors=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                outside = [m.name for m in tar.getmembers() if Path(m.name).parts[:2] != STUDY.parts]
                if outside:
                    raise FmnistError(f"the archive holds paths outside {STUDY}/: {', '.join(outside[:3])}")
                tar.extractall(incoming, filter="data")
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(incoming, ignore_errors=True)
            raise FmnistError(f"cannot extract {', '.join(map(str, archive_parts))}: {exc}") from exc
        study.mkdir(parents=True, exist_ok=True)
        for old, new in follow_device_renumbering(incoming / STUDY, study):
            print(f"renamed {old} to {new}, as the session renumbered it (its preset's grid changed)")
        moved, same = _merge(incoming / STUDY, study) if (incoming / STUDY).is_dir() else (0, 0)
        added, kept = added + moved, kept + same
        shutil.rmtree(incoming, ignore_errors=True)
    _remove_empty(repo / ASIDE)
    return added, kept


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise FmnistError(f"{root} is not a folder (the repository root that holds {STUDY}/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist.study_transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pack", help="here, before a device call: park multirun/study, write the .devstudy kit")
    up = sub.add_parser("unpack", help="here, after it: restore multirun/study and extract what came back")
    up.add_argument("parts", nargs="*", type=Path, help="archive parts, or folders holding study.tar.gz.part-*")
    note = sub.add_parser("manifest", help="there, before the study: the summaries present (JSON on stdout)")
    note.add_argument("root", type=Path)
    arch = sub.add_parser("archive", help="there, after it: the run dirs finished since the manifest")
    arch.add_argument("root", type=Path)
    arch.add_argument("manifest", type=Path)
    arch.add_argument("out", type=Path, help=f"the archive's path, e.g. $OUT/{ARCHIVE}")
    args = parser.parse_args(argv)
    repo = Path.cwd()
    try:
        if args.command == "pack":
            had_study = (repo / STUDY).exists()
            n = pack(repo)
            print((f"parked {STUDY}/ in {ASIDE}/ and wrote the summaries of its {n} run dirs to {KIT}/ " if had_study
                   else f"no {STUDY}/ yet: wrote an empty {KIT}/ (the device session starts the study) ")
                  + f"(carry {KIT} in the device call; afterwards: python -m fmnist.study_transfer unpack ...)")
        elif args.command == "unpack":
            parked = (repo / ASIDE / STUDY).exists()
            added, kept = unpack(repo, args.parts)
            print((f"{STUDY}/ is back; " if parked else f"nothing was parked in {ASIDE}/ here; ")
                  + (f"{added} run dirs added from the archive" if args.parts else
                     "no archive parts given, so nothing was added")
                  + (f", {kept} kept as they were (already finished here)" if kept else ""))
        elif args.command == "manifest":
            _check_root(args.root)
            print(json.dumps(manifest(args.root), indent=1))
        else:
            _check_root(args.root)
            try:
                before = json.loads(args.manifest.read_text())
            except (OSError, ValueError) as exc:
                raise FmnistError(f"cannot read the manifest {args.manifest}: {exc}") from exc
            if not isinstance(before, dict):
                raise FmnistError(f"{args.manifest} is not a manifest (python -m fmnist.study_transfer manifest)")
            if args.out.is_dir() or not args.out.parent.is_dir():
                raise FmnistError(f"{args.out}: give the archive's file name in an existing folder, e.g. "
                                  f"$OUT/{ARCHIVE}")
            n = len(finished_since(args.root, before))
            parts = archive(args.root, before, args.out)
            print(f"{n} run dirs finished in this session" + (f": {', '.join(p.name for p in parts)}" if parts else ""))
    except FmnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
