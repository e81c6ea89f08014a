"""Build a FashionMNIST-Resplit folder from the raw Fashion-MNIST IDX files.

Usage::

    python -m fmnist.data.prepare --out data/FashionMNIST-Resplit            # official 60k/10k split
    python -m fmnist.data.prepare --out data/random-s1 --mode random --seed 1 # seeded random re-split

The folder has the layout of the users' copy (see :mod:`fmnist.data.resplit`): ``data.parquet``
(id, image struct<bytes, path>, split, label), ``train.csv`` and ``test.csv``. It is built in a temporary
folder next to ``--out`` and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import multiprocessing
import logging
import os
import secrets
import shlex
import shutil
import struct
import sys
import tempfile
import time
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from fmnist.data.resplit import (
    IMAGE_SIZE,
    NUM_CLASSES,
    PARQUET_NAME,
    TEST_CSV,
    TRAIN_CSV,
    _user_cache_dir,
    dataset_folder,
)
from fmnist.errors import DataError, guard_standard_streams
from fmnist.stopping import signals_as_interrupt

_log = logging.getLogger("fmnist")

RAW_ENV = "FASHION_MNIST_RAW"
DEBIAN_RAW_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The `data.dir` default (conf/data/fmnist_resplit.yaml): where `--out` builds by default, and the one folder
#: `auto_prepare=auto` builds when missing.
DEFAULT_DIR = Path("data/FashionMNIST-Resplit")
MODES = ("official", "random")
RAW_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
GET_RAW_HINT = (
    "install the Debian package with `sudo apt-get install dataset-fashion-mnist` "
    f"(it puts the four IDX files in {DEBIAN_RAW_DIR}), or set {RAW_ENV}=<folder> (or pass --raw <folder>) "
    "pointing at a folder with " + ", ".join(f"{s}.gz" for s in RAW_STEMS.values())
)

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_PARALLEL_MIN_IMAGES = 4096
_IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_SCHEMA = pa.schema(
    [("id", pa.int64()), ("image", _IMAGE_TYPE), ("split", pa.string()), ("label", pa.int64())],
    # Hugging Face `datasets` feature metadata, so `load_dataset("parquet", ...)` decodes `image` as an Image
    metadata={
        b"huggingface": json.dumps(
            {
                "info": {
                    "features": {
                        "id": {"dtype": "int64", "_type": "Value"},
                        "image": {"_type": "Image"},
                        "split": {"dtype": "string", "_type": "Value"},
                        "label": {"dtype": "int64", "_type": "Value"},
                    }
                }
            }
        ).encode()
    },
)


# ---------------------------------------------------------------------------------------------- raw


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into a native-endian array; DataError if it is malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number 0x{raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX data is {len(raw) - header} bytes but the header's shape {dims} needs {expected} "
            "(truncated or corrupt file)"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def _raw_file(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing_raw(folder: Path) -> list[str]:
    return [f"{stem}[.gz]" for stem in RAW_STEMS.values() if _raw_file(folder, stem) is None]


def _download_with_torchvision(root: Path) -> Path:
    """Download Fashion-MNIST with torchvision into `root`; return the folder holding the IDX files."""
    from torchvision.datasets import FashionMNIST

    for train in (True, False):
        FashionMNIST(root=str(root), train=train, download=True)
    return root / "FashionMNIST" / "raw"


def find_raw_dir() -> Path:
    """Folder with the four raw IDX files: ``$FASHION_MNIST_RAW``, else DEBIAN_RAW_DIR, else a torchvision download.

    The download goes to ``$XDG_CACHE_HOME/fmnist/raw`` (``~/.cache/fmnist/raw``). Raises one DataError
    saying how to get the data when nothing works.
    """
    env = os.environ.get(RAW_ENV)
    if env:
        folder = Path(env).expanduser()
        missing = _missing_raw(folder)
        if missing:
            raise DataError(f"${RAW_ENV}={env}: {folder} lacks {', '.join(missing)}; {GET_RAW_HINT}")
        return folder
    if not _missing_raw(DEBIAN_RAW_DIR):
        return DEBIAN_RAW_DIR
    cache = _user_cache_dir()
    if cache is None:
        raise DataError(f"raw Fashion-MNIST IDX files not found ({RAW_ENV} is not set, {DEBIAN_RAW_DIR} lacks them) "
                        f"and there is no home folder to download them into (set HOME or XDG_CACHE_HOME); "
                        f"{GET_RAW_HINT}")
    download_root = cache / "raw"
    try:
        folder = _download_with_torchvision(download_root)
        missing = _missing_raw(folder)
        if not missing:
            return folder
        failure = f"it did not produce {', '.join(missing)}"
    except Exception as exc:  # noqa: BLE001 - no torchvision, no network, disk full, ...
        failure = f"{type(exc).__name__}: {exc}"
    raise DataError(
        f"raw Fashion-MNIST IDX files not found ({RAW_ENV} is not set, {DEBIAN_RAW_DIR} lacks them, and the "
        f"torchvision download into {download_root} failed: {failure}); {GET_RAW_HINT}"
    )


def _read_raw(raw_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    missing = _missing_raw(raw_dir)
    if missing:
        raise DataError(f"{raw_dir}: missing raw file(s) {', '.join(missing)}; {GET_RAW_HINT}")
    arrays = {name: read_idx(_raw_file(raw_dir, stem)) for name, stem in RAW_STEMS.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_path = _raw_file(raw_dir, RAW_STEMS[f"{split}_images"])
        lab_path = _raw_file(raw_dir, RAW_STEMS[f"{split}_labels"])
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{img_path}: expected uint8 images of shape [N, 28, 28], got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{lab_path}: expected {images.shape[0]} uint8 labels (one per image in {img_path.name}), "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.size and labels.max() >= NUM_CLASSES:
            raise DataError(f"{lab_path}: label {labels.max()} is outside 0..{NUM_CLASSES - 1}")
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


# -------------------------------------------------------------------------------------------- build


def _encode_chunk(images: np.ndarray) -> list[bytes]:
    """PNG-encode uint8 [N, 28, 28] images as mode "L" (runs in worker processes)."""
    out = []
    for image in images:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _encode_pngs(images: np.ndarray, workers: int | None = None) -> list[bytes]:
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(images) < _PARALLEL_MIN_IMAGES:
        return _encode_chunk(images)
    chunks = np.array_split(images, workers * 4)
    # fork (where available) needs no importable __main__, unlike spawn (stdin scripts, notebooks, unguarded
    # scripts); the workers only use numpy + PIL. Any pool failure falls back to encoding in this process.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return [png for chunk in pool.map(_encode_chunk, chunks) for png in chunk]
    except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, OSError (no /dev/shm, fork limits), ...
        warnings.warn(f"parallel PNG encoding failed ({type(exc).__name__}: {exc}); encoding in one process")
        return _encode_chunk(images)


def _random_test_mask(n: int, n_test: int, seed: int) -> np.ndarray:
    """Seeded (numpy default_rng), unstratified choice of n_test of n images for the test split."""
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return mask


def _check_out_dir(out: Path, force: bool) -> None:
    if force or not (out.exists() or out.is_symlink()):
        return
    if not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; remove it or pass --force to replace it")
    if any(out.iterdir()):
        raise DataError(f"{out}: folder exists and is not empty; pass --force to replace it")


def _make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder in `parent` with normal (umask) permissions, unlike mkdtemp's 0700."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _move_into_place(tmp: Path, out: Path) -> None:
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        out.rmdir()
    if out.exists() or out.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        try:
            os.replace(tmp, out)
        except BaseException:  # Ctrl-C or a failed rename: the old folder goes back
            os.replace(old / out.name, out)
            old.rmdir()
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def build_resplit(
    out_dir: str | Path,
    mode: str = "official",
    seed: int = 0,
    raw_dir: Path | None = None,
    hide_test_labels: bool = False,
    force: bool = False,
) -> Path:
    """Build a FashionMNIST-Resplit folder at `out_dir` from the raw IDX files; return its path.

    mode "official": ids 0..59999 are the IDX train images in file order, 60000..69999 the t10k images.
    mode "random": the same ids (train then t10k order), with a seeded unstratified 60k/10k re-split.
    hide_test_labels writes null parquet labels and an id-only test.csv for the test rows.
    An existing non-empty `out_dir` is refused unless force=True; it is replaced only once the new one is complete.
    """
    if mode not in MODES:
        raise DataError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    out = Path(out_dir).expanduser().absolute()
    _check_out_dir(out, force)
    raw = Path(raw_dir).expanduser() if raw_dir is not None else find_raw_dir()
    train_x, train_y, test_x, test_y = _read_raw(raw)

    images = np.concatenate([train_x, test_x])
    labels = np.concatenate([train_y, test_y]).astype(np.int64)
    n = images.shape[0]
    ids = np.arange(n, dtype=np.int64)
    if mode == "official":
        is_test = ids >= train_x.shape[0]
    else:
        is_test = _random_test_mask(n, test_x.shape[0], seed)
    pngs = _encode_pngs(images)
    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.StructArray.from_arrays(
                [pa.array(pngs, pa.binary()), pa.nulls(n, pa.string())], fields=list(_IMAGE_TYPE)
            ),
            pa.array(np.where(is_test, "test", "train"), pa.string()),
            pa.array(labels, pa.int64(), mask=is_test if hide_test_labels else None),
        ],
        schema=_SCHEMA,
    )
    import pandas as pd  # the builder alone needs it: keeps pandas out of the trainer's start-up

    train_df = pd.DataFrame({"id": ids[~is_test], "label": labels[~is_test]})
    test_df = pd.DataFrame({"id": ids[is_test]} if hide_test_labels else {"id": ids[is_test], "label": labels[is_test]})

    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _make_temp_dir(out.parent, f".{out.name}.tmp-")
        pq.write_table(table, tmp / PARQUET_NAME)
        train_df.to_csv(tmp / TRAIN_CSV, index=False)
        test_df.to_csv(tmp / TEST_CSV, index=False)
        _check_out_dir(out, force)  # it may have appeared while we were building
        _move_into_place(tmp, out)
        tmp = None
    except OSError as exc:
        raise DataError(f"{out}: cannot write the dataset folder ({exc})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_resplit(
    data_dir: str | Path, auto_prepare: bool | str = True, mode: str = "official", seed: int = 0,
    option: str = "data.dir",
) -> Path:
    """Return `data_dir`, building it with :func:`build_resplit` first if it does not exist and `auto_prepare`
    (true, or ``auto`` when `data_dir` is the default folder: any other missing folder is more likely a mistyped
    path to the user's own copy than a request for the official split). `option` is how the error names the
    setting that gave `data_dir`.

    An existing folder is returned as is (the reader validates it); a path to one of its files means the folder.
    Concurrent callers (sweep jobs) are serialised with a lock file next to the folder, so it is built once.
    DataError when it is missing and not to be built, or when the build fails.
    """
    path = dataset_folder(data_dir)
    if path.exists():
        return path
    command = f"python -m fmnist.data.prepare --out {shlex.quote(str(path))}"
    if auto_prepare == "auto" and path.resolve() != DEFAULT_DIR.resolve():
        raise DataError(
            f"dataset folder {path} does not exist; {option} names your FashionMNIST-Resplit folder (a typo?). To "
            f"build the official split there instead: {command}"
            + (", or set data.auto_prepare=true" if option == "data.dir" else "")
        )
    if not auto_prepare:
        raise DataError(f"dataset folder {path} does not exist and data.auto_prepare is off; build it with: {command}")
    lock_path = path.parent / f".{path.name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "a+b")  # noqa: SIM115 - held across the build
    except OSError as exc:
        raise DataError(f"{path}: cannot create the dataset folder ({exc})") from None
    with lock:
        try:
            import fcntl

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        except (ImportError, OSError):  # no flock (Windows, some network filesystems): rely on the rename
            pass
        if path.exists():  # another process built it while we waited
            return path
        _log.info("building %s from the raw Fashion-MNIST files (mode %s); this happens once", path, mode)
        try:
            return build_resplit(path, mode=mode, seed=seed)
        except DataError:
            if (path / PARQUET_NAME).is_file():  # lost a race with a builder that holds no lock
                return path
            raise
        finally:  # still held: a waiting process gets this lock, sees the folder (or builds it) and returns
            lock_path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """CLI: build a FashionMNIST-Resplit folder; returns the exit status (1 on DataError)."""
    parser = argparse.ArgumentParser(
        prog="python -m fmnist.data.prepare",
        description="Build a FashionMNIST-Resplit folder (data.parquet, train.csv, test.csv) from the raw "
        "Fashion-MNIST IDX files.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="official",
        help="official: the 60k/10k official split; random: a seeded, unstratified 60k/10k re-split",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --mode random (default: %(default)s)")
    parser.add_argument(
        "--raw", type=Path, default=None,
        help=f"folder with the raw IDX files (default: ${RAW_ENV}, else {DEBIAN_RAW_DIR}, else a torchvision download "
        "into $XDG_CACHE_HOME/fmnist/raw, ~/.cache/fmnist/raw)",
    )
    parser.add_argument("--hide-test-labels", action="store_true", help="write the test split without labels")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists and is not empty")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        with signals_as_interrupt():
            out = build_resplit(
                args.out,
                mode=args.mode,
                seed=args.seed,
                raw_dir=args.raw,
                hide_test_labels=args.hide_test_labels,
                force=args.force,
            )
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the half-built folder is removed (build_resplit)
        print(f"interrupted: {args.out} was not written; run the same command again", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    n_train = sum(1 for _ in open(out / TRAIN_CSV)) - 1
    n_test = sum(1 for _ in open(out / TEST_CSV)) - 1
    what = f"mode {args.mode}" + (f", seed {args.seed}" if args.mode == "random" else "")
    print(f"wrote {out} ({what}): {n_train} train + {n_test} test images"
          + (", test labels hidden" if args.hide_test_labels else "") + f", in {elapsed:.1f} s")
    for name in (PARQUET_NAME, TRAIN_CSV, TEST_CSV):
        print(f"  {name:<13} {(out / name).stat().st_size / 2**20:8.2f} MiB")
    return 0


if __name__ == "__main__":
    guard_standard_streams()
    sys.exit(main())
