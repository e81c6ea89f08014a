"""Reader for the FashionMNIST-Resplit folder: validation, PNG decoding and a decoded-array cache.

Folder layout (see shared/notes/data.md)::

    data.parquet  id int64, image struct<bytes: binary PNG 28x28 "L", path: string>, split "train"/"test",
                  label int64 0..9 (optional; null for hidden test rows)
    train.csv     id,label
    test.csv      id[,label]  (labels missing or empty: hidden test set)

Every problem with the input raises one :class:`~fmnist.errors.DataError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shlex
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import PngImagePlugin

from fmnist.errors import DataError, first_line
from fmnist.train.run_dir import _UMASK

log = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28

PARQUET_NAME = "data.parquet"
TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"
SOURCE_FILES = (PARQUET_NAME, TRAIN_CSV, TEST_CSV)
REQUIRED_PARQUET_COLUMNS = ("id", "image", "split")

#: Part of every cache key: bump it when what the reader returns for the same files changes. 2: CSV headers are
#: matched ignoring case and spaces (98d53a7), so a cache of a test.csv headed 'id,Label' no longer hides its labels.
CACHE_FORMAT_VERSION = 2
LOCAL_CACHE_DIRNAME = ".fmnist_cache"
PREPARE_HINT = "python -m fmnist.data.prepare --out {dir}"


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split: images sorted by id."""

    ids: np.ndarray  # int64 [N]
    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray | None  # int64 [N]; None when labels are hidden (test only)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def content_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of a labelled image set that ignores ids and order: the (image, label) records, sorted."""
    records = np.concatenate([images.reshape(len(images), -1).astype(np.uint8),
                              labels.astype(np.uint8).reshape(-1, 1)], axis=1)
    records = np.ascontiguousarray(records).view(np.dtype((np.void, records.shape[1]))).ravel()
    return hashlib.sha256(np.sort(records).tobytes()).hexdigest()


#: content_sha256 of the official Fashion-MNIST test set (the 10,000 t10k images and labels).
OFFICIAL_TEST_SHA256 = "81875622ad6afb3e0bbaab6b5725f6f1d7759c18ac59f6306006d04c25bd7d29"


def is_official_test(test: ImageSet) -> bool | None:
    """Whether `test` is the official Fashion-MNIST test set, in any order and under any ids (None: unlabelled)."""
    if test.labels is None:
        return None
    return content_sha256(test.images, test.labels) == OFFICIAL_TEST_SHA256


def data_fingerprint(data: "Resplit") -> str:
    """A short SHA-256 of everything a run reads from a data folder: each split's ids, labels (when present) and
    images, in id order. Two folders with the same fingerprint give a run the same data wherever they are;
    another re-split, another label or one changed pixel gives another fingerprint."""
    digest = hashlib.sha256()
    for name, split in (("train", data.train), ("test", data.test)):
        for part, array in (("ids", split.ids), ("labels", split.labels), ("images", split.images)):
            if array is None:
                digest.update(f"{name}.{part}:none;".encode())
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{name}.{part}:{array.dtype.str}{array.shape};".encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


#: data_fingerprint of the official split as `python -m fmnist.data.prepare` builds it from the raw files (checked by
#: tests/test_data.py).
OFFICIAL_RESPLIT_FINGERPRINT = "1f9fdcb9214e324d"


@dataclass(frozen=True, eq=False)
class Resplit:
    """The train and test splits of a FashionMNIST-Resplit folder."""

    train: ImageSet
    test: ImageSet


# --------------------------------------------------------------------------------------------- public


def load_resplit(data_dir: str | Path, cache_dir: str | Path | None = None) -> Resplit:
    """Read, validate and decode a FashionMNIST-Resplit folder; arrays are sorted by id within each split.

    Decoded arrays are cached (uncompressed ``.npz``) in ``cache_dir``, else ``<data_dir>/.fmnist_cache/``,
    falling back to ``$XDG_CACHE_HOME/fmnist`` (``~/.cache/fmnist``) when that is not writable. The cache is
    keyed on the (name, size, mtime_ns) of the source files and a format version.
    Raises DataError for any missing or malformed input.
    """
    data_dir = dataset_folder(data_dir)
    files = _check_folder(data_dir)
    stats = _source_stats(files)
    locations = _cache_locations(data_dir, cache_dir)
    key = _cache_key(stats)
    for folder, tag in locations:
        cached = _read_cache(folder / _cache_filename(tag, key), key)
        if cached is not None:
            return cached
    resplit = _load_uncached(data_dir, files)
    if _source_stats(files) == stats:  # don't cache data read from files that changed meanwhile
        _write_cache(locations, key, resplit)
    return resplit


# ------------------------------------------------------------------------------------------- folder


def dataset_folder(path: str | Path) -> Path:
    """`path` with ``~`` expanded; a path to one of the folder's files (e.g. ``.../data.parquet``) means its folder."""
    path = Path(path).expanduser()
    if path.name in SOURCE_FILES and not path.is_dir():
        log.info("data: %s names a file of the dataset; using its folder %s", path, path.parent)
        return path.parent
    return path


def _check_folder(data_dir: Path) -> dict[str, Path]:
    hint = PREPARE_HINT.format(dir=shlex.quote(str(data_dir)))
    if not data_dir.exists():
        raise DataError(f"dataset folder {data_dir} does not exist; build it with: {hint}")
    elsewhere = PREPARE_HINT.format(dir="NEW_FOLDER")  # not over what is there: prepare refuses that
    if not data_dir.is_dir():
        raise DataError(f"dataset folder {data_dir} is a file, not a folder: point data.dir at the folder holding "
                        f"{', '.join(SOURCE_FILES)} (or build one with: {elsewhere})")
    files = {name: data_dir / name for name in SOURCE_FILES}
    for name, path in files.items():
        if not path.is_file():
            raise DataError(
                f"{path}: file not found; a dataset folder needs {', '.join(SOURCE_FILES)} "
                f"(build one with: {elsewhere})"
            )
    return files


# -------------------------------------------------------------------------------------------- cache


def _user_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/fmnist``, else ``~/.cache/fmnist``; None without a home folder (HOME unset and the user
    unknown to the system: a container's arbitrary uid)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "fmnist"
    try:
        return Path.home() / ".cache" / "fmnist"
    except RuntimeError:
        return None


def _source_stats(files: dict[str, Path]) -> list[tuple[str, int, int]]:
    stats = []
    for name, path in files.items():
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        stats.append((name, st.st_size, st.st_mtime_ns))
    return stats


def _cache_key(stats: list[tuple[str, int, int]]) -> str:
    return json.dumps({"format": CACHE_FORMAT_VERSION, "files": stats}, sort_keys=True)


def _cache_locations(data_dir: Path, cache_dir: str | Path | None) -> list[tuple[Path, str]]:
    """(folder, file tag) pairs to read from / write to, in order of preference.

    The tag is ``local`` inside the dataset folder (so the cache survives moving the folder) and a hash of
    the folder's absolute path in shared cache folders.
    """
    path_tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    if cache_dir is not None:
        return [(Path(cache_dir).expanduser(), path_tag)]
    user = _user_cache_dir()
    return [(data_dir / LOCAL_CACHE_DIRNAME, "local")] + ([(user, path_tag)] if user is not None else [])


def _cache_filename(tag: str, key: str) -> str:
    return f"resplit-{tag}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _read_cache(path: Path, key: str) -> Resplit | None:
    """The cached Resplit, or None if the file is absent, stale, corrupt or inconsistent (never trusted)."""
    if not path.is_file():
        return None
    try:
        # zipfile checks each member's CRC-32 when it is read in full, so corruption raises here
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            names = set(z.files)
            sets = []
            for split in ("train", "test"):
                labels = z[f"{split}_labels"] if f"{split}_labels" in names else None
                sets.append(_checked_set(z[f"{split}_ids"], z[f"{split}_images"], labels))
        if sets[0].labels is None:
            return None
        return Resplit(train=sets[0], test=sets[1])
    except Exception:  # noqa: BLE001 - any unreadable cache is simply rebuilt
        return None


def _checked_set(ids: np.ndarray, images: np.ndarray, labels: np.ndarray | None) -> ImageSet:
    n = ids.shape[0] if ids.ndim == 1 else -1
    ok = (
        ids.dtype == np.int64
        and n >= 0
        and images.dtype == np.uint8
        and images.shape == (n, IMAGE_SIZE, IMAGE_SIZE)
        and bool(np.all(ids[1:] > ids[:-1]))
    )
    if labels is not None:
        ok = ok and labels.dtype == np.int64 and labels.shape == (n,)
        ok = ok and bool(np.all((labels >= 0) & (labels < NUM_CLASSES)))
    if not ok:
        raise ValueError("inconsistent cache contents")
    return ImageSet(ids=ids, images=images, labels=labels)


def _write_cache(locations: list[tuple[Path, str]], key: str, resplit: Resplit) -> Path | None:
    """Write the cache atomically to the first writable location; warn (don't fail) if none is."""
    arrays: dict[str, np.ndarray] = {"key": np.array(key)}
    for split, s in (("train", resplit.train), ("test", resplit.test)):
        arrays[f"{split}_ids"] = s.ids
        arrays[f"{split}_images"] = s.images
        if s.labels is not None:
            arrays[f"{split}_labels"] = s.labels
    problems = []
    for folder, tag in locations:
        final = folder / _cache_filename(tag, key)
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".resplit-", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600: others sharing the dataset folder could not read it
            os.replace(tmp, final)
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or exc}")
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            continue
        for stale in folder.glob(f"resplit-{tag}-*.npz"):  # older versions of the same folder's data
            if stale != final:
                try:
                    stale.unlink()
                except OSError:
                    pass
        return final
    warnings.warn(
        "could not write the decoded-dataset cache (" + "; ".join(problems) + "); images will be decoded again "
        "on the next load",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


# ------------------------------------------------------------------------------------------ reading


def _load_uncached(data_dir: Path, files: dict[str, Path]) -> Resplit:
    pq_path = files[PARQUET_NAME]
    table = _read_parquet(pq_path)
    ids = _parquet_ids(table.column("id"), pq_path)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    _check_unique(sorted_ids, pq_path)
    is_train = _parquet_split(table.column("split"), ids, order, pq_path)
    pq_labels = _parquet_labels(table.column("label"), ids, pq_path) if "label" in table.column_names else None
    blobs, image_paths = _parquet_image_bytes(table.column("image"), pq_path)
    del table

    train_csv = _read_csv(files[TRAIN_CSV])
    test_csv = _read_csv(files[TEST_CSV])
    overlap = np.intersect1d(train_csv.ids, test_csv.ids, assume_unique=True)
    if overlap.size:
        raise DataError(
            f"{files[TRAIN_CSV]} and {files[TEST_CSV]}: id {overlap[0]} is in both train and test "
            f"({overlap.size} shared id{'s' if overlap.size > 1 else ''})"
        )
    train_rows = _locate(train_csv, sorted_ids, order, pq_path)
    test_rows = _locate(test_csv, sorted_ids, order, pq_path)
    _check_membership(is_train, train_rows, test_rows, ids, order, files)

    train_labels = _resolve_labels("train", train_rows, pq_labels, train_csv, ids, files)
    test_labels = _resolve_labels("test", test_rows, pq_labels, test_csv, ids, files)
    if train_labels is None:
        raise DataError(
            f"{data_dir}: the train split has no labels ({PARQUET_NAME} has no label values for train rows "
            f"and {TRAIN_CSV} has no label column or it is empty)"
        )
    train_images = _decode_images(blobs, image_paths, train_rows, train_csv.ids, pq_path)
    test_images = _decode_images(blobs, image_paths, test_rows, test_csv.ids, pq_path)
    return Resplit(train=ImageSet(train_csv.ids, train_images, train_labels),
                   test=ImageSet(test_csv.ids, test_images, test_labels))


def _read_parquet(path: Path) -> pa.Table:
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise DataError(f"{path}: cannot read parquet file ({exc})") from None
    missing = [c for c in REQUIRED_PARQUET_COLUMNS if c not in schema.names]
    if missing:
        raise DataError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(schema.names) or 'none'}; expected id, image, split and optionally label)"
        )
    columns = list(REQUIRED_PARQUET_COLUMNS) + (["label"] if "label" in schema.names else [])
    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot read parquet file ({exc})") from None


def _parquet_ids(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    if not pa.types.is_integer(column.type):
        raise DataError(f"{path}: column id has type {column.type}; expected integers")
    if column.null_count:
        raise DataError(f"{path}: column id has {column.null_count} missing value(s)")
    return column.to_numpy().astype(np.int64, copy=False)


def _check_unique(sorted_ids: np.ndarray, path: Path) -> None:
    dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if dup.size:
        n = np.unique(dup).size
        more = f" ({n} ids occur more than once)" if n > 1 else ""
        raise DataError(f"{path}: duplicate id {dup[0]}{more}")


def _parquet_split(column: pa.ChunkedArray, ids: np.ndarray, order: np.ndarray, path: Path) -> np.ndarray:
    """Boolean 'is train' per parquet row; every value must be 'train' or 'test' (case and outer spaces ignored)."""
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    is_train = values == "train"
    bad = ~(is_train | (values == "test"))
    if bad.any():  # 'Train', ' test ': unambiguous
        norm = np.array([v.strip().lower() if isinstance(v, str) else v for v in values], dtype=object)
        is_train = norm == "train"
        still_bad = ~(is_train | (norm == "test"))
        if not still_bad.any():
            log.info("data: %s: column split has values like %r; read as %r", path, values[bad][0], norm[bad][0])
            return is_train
        bad = still_bad
        row = order[np.flatnonzero(bad[order])[0]]
        raise DataError(
            f"{path}: column split has value {values[row]!r} for id {ids[row]}; expected 'train' or 'test'"
        )
    return is_train


@dataclass(frozen=True, eq=False)
class _Labels:
    """Labels from one source with a presence mask (missing entries are 0 in `values`)."""

    values: np.ndarray  # int64
    present: np.ndarray  # bool


def _check_label_values(
    values: np.ndarray, present: np.ndarray, ids: np.ndarray, where: str, originals: np.ndarray | None = None
) -> np.ndarray:
    """Check float/int label values (presence-masked) are integers 0..9; return them as int64 (0 where absent)."""
    values = np.asarray(values, dtype=np.float64)
    nonint = present & ~(np.isfinite(values) & (values == np.round(values)))
    if nonint.any():
        i = np.flatnonzero(nonint)[0]
        shown = originals[i] if originals is not None else values[i]
        shown = shown.item() if isinstance(shown, np.generic) else shown
        raise DataError(f"{where}: label {shown!r} for id {ids[i]} is not an integer (expected 0..9)")
    out_of_range = present & ((values < 0) | (values >= NUM_CLASSES))
    if out_of_range.any():
        i = np.flatnonzero(out_of_range)[0]
        raise DataError(f"{where}: label {int(values[i])} for id {ids[i]} is outside 0..{NUM_CLASSES - 1}")
    return np.where(present, values, 0).astype(np.int64)


def _parquet_labels(column: pa.ChunkedArray, ids: np.ndarray, path: Path) -> _Labels:
    t = column.type
    if pa.types.is_null(t):
        return _Labels(np.zeros(len(ids), np.int64), np.zeros(len(ids), bool))
    if pa.types.is_integer(t):
        present = ~pc.is_null(column).to_numpy()
        raw = pc.fill_null(column, 0).to_numpy().astype(np.int64, copy=False)
        bad = present & ((raw < 0) | (raw >= NUM_CLASSES))
        if bad.any():
            i = np.flatnonzero(bad)[0]
            raise DataError(f"{path}: label {raw[i]} for id {ids[i]} is outside 0..{NUM_CLASSES - 1}")
        return _Labels(np.where(present, raw, 0).astype(np.int64, copy=False), present)
    if pa.types.is_floating(t):
        raw = pc.fill_null(column, float("nan")).to_numpy().astype(np.float64, copy=False)
        present = ~np.isnan(raw)
        return _Labels(_check_label_values(raw, present, ids, str(path)), present)
    raise DataError(f"{path}: column label has type {t}; expected integer labels 0..{NUM_CLASSES - 1}")


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)  # view: Polars


def _parquet_image_bytes(column: pa.ChunkedArray, path: Path) -> tuple[list[bytes | None], list[str | None]]:
    """Per parquet row: the PNG bytes (None when missing) and the struct's image.path (None when absent)."""
    t = column.type
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    paths: list[str | None] = [None] * len(array)
    if pa.types.is_struct(t) and t.get_field_index("bytes") >= 0:
        fields = array.flatten()  # flatten() applies the struct's own nulls
        if t.get_field_index("path") >= 0 and fields[t.get_field_index("path")].null_count < len(array):
            paths = fields[t.get_field_index("path")].cast(pa.string()).to_pylist()
        array = fields[t.get_field_index("bytes")]
    elif not _is_binary(t):
        raise DataError(
            f"{path}: column image has type {t}; expected struct<bytes: binary, path: string> holding PNG bytes"
        )
    if not _is_binary(array.type):
        raise DataError(f"{path}: column image has field bytes of type {array.type}; expected binary (PNG)")
    return array.to_pylist(), paths


@dataclass(frozen=True, eq=False)
class _Csv:
    path: Path
    ids: np.ndarray  # int64, sorted
    labels: _Labels | None  # aligned with ids; None when the label column is absent


def _read_csv(path: Path) -> _Csv:
    import pandas as pd  # only the uncached path reads CSVs: keeps pandas out of a cached start-up

    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty; expected a header line 'id,label' and one row per image") from None
    except Exception as exc:  # noqa: BLE001 - parser, encoding and OS errors
        raise DataError(f"{path}: cannot read CSV ({first_line(exc)})") from None
    found = ", ".join(str(c) for c in df.columns) or "none"
    df.columns = [str(c).strip().lower() for c in df.columns]  # "ID,Label" means id,label
    for name in ("id", "label"):
        if df.columns.tolist().count(name) > 1:
            raise DataError(f"{path}: more than one column is named {name} (found: {found})")
    if "id" not in df.columns:
        raise DataError(
            f"{path}: missing column id (found: {found}); expected a header line 'id,label' (comma-separated)"
        )
    raw_ids = df["id"]
    if pd.api.types.is_integer_dtype(raw_ids.dtype):
        ids = raw_ids.to_numpy(np.int64)
    else:
        num = pd.to_numeric(raw_ids, errors="coerce").to_numpy(np.float64)
        bad = ~(np.isfinite(num) & (num == np.round(num)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: line {i + 2}: id {raw_ids.iloc[i]!r} is missing or not an integer")
        ids = num.astype(np.int64)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    _check_unique(ids, path)
    labels = None
    if "label" in df.columns:
        raw = df["label"].iloc[order]
        present = raw.notna().to_numpy()
        if pd.api.types.is_integer_dtype(raw.dtype):
            values = _check_label_values(raw.to_numpy(np.float64), present, ids, str(path))
        else:
            num = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
            num = np.where(present & np.isnan(num), np.inf, num)  # unparsable text -> not an integer
            values = _check_label_values(num, present, ids, str(path), raw.to_numpy(object))
        labels = _Labels(values, present)
    elif len(df.columns) > 1:  # e.g. 'id,class': a label column under another name would read as hidden labels
        log.warning("%s has no column label (found: %s): its labels, if any, are not read", path, found)
    return _Csv(path=path, ids=ids, labels=labels)


def _locate(csv: _Csv, sorted_ids: np.ndarray, order: np.ndarray, pq_path: Path) -> np.ndarray:
    """Parquet row index of every CSV id."""
    pos = np.searchsorted(sorted_ids, csv.ids)
    found = pos < sorted_ids.size
    found[found] = sorted_ids[pos[found]] == csv.ids[found]
    if not found.all():
        missing = csv.ids[~found]
        raise DataError(
            f"{csv.path}: id {missing[0]} is not in {pq_path}"
            + (f" ({missing.size} ids are missing)" if missing.size > 1 else "")
        )
    return order[pos]


def _check_membership(
    is_train: np.ndarray,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    ids: np.ndarray,
    order: np.ndarray,
    files: dict[str, Path],
) -> None:
    """The parquet split column must agree with the CSVs, and every parquet row must be in one CSV."""
    member = np.zeros(ids.size, np.int8)  # 0 neither, 1 train.csv, 2 test.csv
    member[train_rows] = 1
    member[test_rows] = 2
    mismatch = member != np.where(is_train, 1, 2)
    if not mismatch.any():
        return
    row = order[np.flatnonzero(mismatch[order])[0]]
    split = "train" if is_train[row] else "test"
    n = int(mismatch.sum())
    more = f" ({n} rows disagree)" if n > 1 else ""
    if member[row] == 0:
        raise DataError(
            f"{files[PARQUET_NAME]}: id {ids[row]} (split {split!r}) is in neither {TRAIN_CSV} nor {TEST_CSV}{more}"
        )
    csv_name = TRAIN_CSV if member[row] == 1 else TEST_CSV
    raise DataError(
        f"{files[PARQUET_NAME]}: split column says {split!r} for id {ids[row]}, but {csv_name} lists it{more}"
    )


def _label_source(split: str, where: Path, labels: _Labels | None, ids: np.ndarray) -> np.ndarray | None:
    """All labels of this source, or None when it has none; partially missing labels are an error."""
    if labels is None or not labels.present.any():
        return None
    if not labels.present.all():
        missing = ~labels.present
        raise DataError(
            f"{where}: {int(missing.sum())} of {missing.size} {split} rows have no label (first: id "
            f"{ids[np.flatnonzero(missing)[0]]}); give labels for all {split} rows or for none"
        )
    return labels.values


def _resolve_labels(
    split: str,
    rows: np.ndarray,
    pq_labels: _Labels | None,
    csv: _Csv,
    ids: np.ndarray,
    files: dict[str, Path],
) -> np.ndarray | None:
    """Labels for one split (aligned with csv.ids) from the parquet and/or the CSV; they must agree."""
    from_pq = None
    if pq_labels is not None:
        sub = _Labels(pq_labels.values[rows], pq_labels.present[rows])
        from_pq = _label_source(split, files[PARQUET_NAME], sub, csv.ids)
    from_csv = _label_source(split, csv.path, csv.labels, csv.ids)
    if from_pq is not None and from_csv is not None:
        differ = from_pq != from_csv
        if differ.any():
            i = np.flatnonzero(differ)[0]
            raise DataError(
                f"{files[PARQUET_NAME]} and {csv.path}: labels disagree for id {csv.ids[i]} "
                f"({from_pq[i]} in {PARQUET_NAME}, {from_csv[i]} in {csv.path.name}"
                + (f"; {int(differ.sum())} ids disagree)" if differ.sum() > 1 else ")")
            )
    return from_pq if from_pq is not None else from_csv


def _decode_images(
    blobs: list[bytes | None], image_paths: list[str | None], rows: np.ndarray, ids: np.ndarray, path: Path
) -> np.ndarray:
    """Decode the PNGs of the given parquet rows into uint8 [N, 28, 28]. A PNG stored in another mode whose pixels
    are gray without loss (equal RGB channels, opaque alpha, a gray palette, 16-bit multiples of 257) is read as
    its gray values, with one log line per mode; any other mode is refused."""
    out = np.empty((rows.size, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    expected_size = (IMAGE_SIZE, IMAGE_SIZE)
    converted: dict[str, int] = {}
    for i, row in enumerate(rows.tolist()):
        blob = blobs[row]
        problem = None
        if blob is None:
            problem = "it has no PNG bytes"
            if image_paths[row] is not None:
                problem += (f"; image.path is {image_paths[row]!r}, but images are read from image.bytes only: "
                            f"store the PNG bytes in {PARQUET_NAME}")
        else:
            try:
                im = PngImagePlugin.PngImageFile(io.BytesIO(blob))
                gray = np.asarray(im) if im.mode == "L" else _exact_gray(im)
                if im.size != expected_size or gray is None:
                    problem = f"it is {im.size[0]}x{im.size[1]} mode {im.mode!r}" + (
                        "" if gray is not None else ", not gray without loss")
                else:
                    out[i] = gray
                    if im.mode != "L":
                        converted[im.mode] = converted.get(im.mode, 0) + 1
            except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad data
                problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            raise DataError(
                f"{path}: image for id {ids[i]} is not a decodable {IMAGE_SIZE}x{IMAGE_SIZE} grayscale "
                f"(mode 'L') PNG ({problem})"
            )
    for mode, count in converted.items():
        log.info("%s: %d PNG(s) stored in mode %r hold gray pixels without loss: read as grayscale", path, count, mode)
    return out


def _exact_gray(im: PngImagePlugin.PngImageFile) -> np.ndarray | None:
    """`im`'s pixels as uint8 gray when its mode holds gray values without loss, else None."""
    if im.mode == "P":
        im = im.convert("RGBA")
    a = np.asarray(im)
    if im.mode in ("I", "I;16", "I;16B"):
        a = a.astype(np.int64)
        return (a // 257).astype(np.uint8) if (a >= 0).all() and (a % 257 == 0).all() else None
    if im.mode in ("LA", "RGBA"):
        if (a[..., -1] != 255).any():
            return None
        a = a[..., :-1]
    if im.mode in ("RGB", "RGBA") and not ((a[..., 0] == a[..., 1]) & (a[..., 1] == a[..., 2])).all():
        return None
    return a[..., 0].copy() if im.mode in ("LA", "RGB", "RGBA") else None
