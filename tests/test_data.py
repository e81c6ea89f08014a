"""Tests for fmnist.data: the Resplit reader and cache, the builder/CLI, and the split helpers."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmnist.data import prepare, resplit
from fmnist.data.prepare import build_resplit, find_raw_dir, read_idx
from fmnist.data.resplit import CLASS_NAMES, ImageSet, Resplit, load_resplit
from fmnist.data.split import stratified_split, subset_indices
from fmnist.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[1]


def assert_set_equal(got: ImageSet, ids, images, labels) -> None:
    assert got.ids.dtype == np.int64 and got.images.dtype == np.uint8
    assert got.images.shape == (len(ids), 28, 28)
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_array_equal(got.images, images)
    if labels is None:
        assert got.labels is None
    else:
        assert got.labels is not None and got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.labels, labels)


def assert_matches(got: Resplit, synthetic) -> None:
    s = synthetic
    assert_set_equal(got.train, s.train_ids, s.train_images, s.train_labels)
    assert_set_equal(got.test, s.test_ids, s.test_images, s.test_labels)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts PNG decoding passes (one per split per uncached load)."""
    calls: list[int] = []
    real = resplit._decode_images

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(resplit, "_decode_images", spy)
    return calls


@pytest.fixture(autouse=True)
def _isolated_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the fallback cache (and any raw download) out of the real home folder."""
    xdg = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    return xdg


# ----------------------------------------------------------------------------------------- reader


def test_class_names() -> None:
    assert CLASS_NAMES[0] == "T-shirt/top" and CLASS_NAMES[9] == "Ankle boot" and len(CLASS_NAMES) == 10


def test_load_synthetic(make_resplit) -> None:
    s = make_resplit()
    got = load_resplit(s.path)
    assert_matches(got, s)
    assert len(got.train) == 200 and len(got.test) == 50
    assert np.all(np.diff(got.train.ids) > 0) and np.all(np.diff(got.test.ids) > 0)


def test_data_fingerprint_names_the_data_not_the_folder(make_resplit) -> None:
    """The same data under two paths has one fingerprint; any change to what a run reads gives another."""
    first = load_resplit(make_resplit("a").path)
    fingerprint = resplit.data_fingerprint(first)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    assert resplit.data_fingerprint(load_resplit(make_resplit("b").path)) == fingerprint  # same data, other folder

    def changed(split: str, part: str, edit) -> Resplit:
        sets = {"train": first.train, "test": first.test}
        arrays = {k: (None if v is None else v.copy()) for k, v in vars(sets[split]).items()}
        arrays[part] = edit(arrays[part])
        sets[split] = ImageSet(**arrays)
        return Resplit(**sets)

    def pixel(images):
        images[3, 10, 10] ^= 1
        return images

    def label(labels):
        labels[0] = (labels[0] + 1) % 10
        return labels

    def ids(values):
        values[-1] += 1000
        return values

    others = [changed("train", "images", pixel), changed("test", "labels", label), changed("train", "ids", ids),
              changed("test", "labels", lambda _: None)]  # the same images with the test labels hidden
    prints = [resplit.data_fingerprint(d) for d in others]
    assert fingerprint not in prints and len(set(prints)) == len(prints)
    swapped = Resplit(train=first.test, test=first.train)  # a split's membership counts, not only the images
    assert resplit.data_fingerprint(swapped) != fingerprint


@pytest.mark.parametrize(
    "options",
    [{"labels_in_parquet": False}, {"labels_in_csv": False}],
    ids=["labels_only_in_csv", "labels_only_in_parquet"],
)
def test_label_sources(make_resplit, options) -> None:
    s = make_resplit(**options)
    assert_matches(load_resplit(s.path), s)


@pytest.mark.parametrize("labels_in_parquet", [True, False], ids=["parquet_nulls", "no_parquet_label_column"])
def test_hidden_test_labels(make_resplit, labels_in_parquet) -> None:
    s = make_resplit(hide_test_labels=True, labels_in_parquet=labels_in_parquet)
    got = load_resplit(s.path)
    assert got.test.labels is None
    assert_matches(got, s)


def test_hidden_test_labels_empty_csv_column(make_resplit) -> None:
    s = make_resplit(labels_in_parquet=False)
    lines = s.test_csv.read_text().splitlines()
    s.test_csv.write_text("\n".join([lines[0]] + [ln.split(",")[0] + "," for ln in lines[1:]]) + "\n")
    got = load_resplit(s.path)
    assert got.test.labels is None
    np.testing.assert_array_equal(got.train.labels, s.train_labels)


def test_a_label_column_under_another_name_is_named_in_a_warning(make_resplit, caplog) -> None:
    s = make_resplit(labels_in_parquet=False)
    lines = s.test_csv.read_text().splitlines()
    s.test_csv.write_text("\n".join(["id,class"] + lines[1:]) + "\n")
    assert load_resplit(s.path).test.labels is None  # hidden test labels, as the file says, but not silently
    assert "test.csv has no column label (found: id, class)" in caplog.text

def test_csv_header_case_and_spaces(make_resplit) -> None:
    """Column names are matched ignoring case and spaces: a test.csv headed 'ID, Label' still gives test labels."""
    s = make_resplit(labels_in_parquet=False)
    for csv in (s.train_csv, s.test_csv):
        lines = csv.read_text().splitlines()
        csv.write_text("\n".join([" ID, Label "] + lines[1:]) + "\n")
    assert_matches(load_resplit(s.path), s)


def test_view_types(make_resplit) -> None:
    """Polars (>= 1.38) writes string_view/binary_view columns, which pyarrow reads back as such."""
    s = make_resplit()
    table = s.read_table()
    blobs = table.column("image").combine_chunks().field("bytes").cast(pa.binary_view())
    split = table.column("split").cast(pa.string_view())
    s.write_table(table.set_column(1, "image", blobs).set_column(2, "split", split))
    assert pq.read_schema(s.parquet).field("image").type == pa.binary_view()
    assert_matches(load_resplit(s.path), s)


def test_split_values_case_and_spaces(make_resplit, caplog) -> None:
    s = make_resplit()
    split = s.read_table().column("split").to_pylist()
    s.set_column("split", pa.array([" Train" if v == "train" else "TEST " for v in split]))
    with caplog.at_level("INFO", logger="fmnist.data.resplit"):
        assert_matches(load_resplit(s.path), s)
    assert "column split has values like" in caplog.text


def test_pngs_in_other_modes_that_hold_gray_without_loss(make_resplit, caplog) -> None:
    """Re-saved copies: RGB with equal channels, opaque RGBA/LA, a palette, 16-bit (8-bit values times 257) are read
    as the gray images they hold; a colour or translucent image is still refused (test_bad_input's rgb_png)."""
    from PIL import Image

    def png(image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()

    s = make_resplit()
    gray = [Image.fromarray(s.train_images[i]) for i in range(5)]
    stored = [gray[0].convert("RGB"), gray[1].convert("RGBA"), gray[2].convert("LA"), gray[3].convert("P"),
              Image.fromarray(s.train_images[4].astype(np.uint16) * 257)]
    for i, image in enumerate(stored):
        s.replace_image(int(s.train_ids[i]), png(image))
    with caplog.at_level("INFO", logger="fmnist.data.resplit"):
        assert_matches(load_resplit(s.path), s)
    assert caplog.text.count("hold gray pixels without loss") == len({im.mode for im in stored})
    translucent = gray[0].convert("LA")
    translucent.putalpha(128)
    s.replace_image(int(s.train_ids[0]), png(translucent))
    with pytest.raises(DataError, match="mode 'LA', not gray without loss"):
        load_resplit(s.path, cache_dir=s.path / "other-cache")

def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "FashionMNIST-Resplit"
    with pytest.raises(DataError) as info:
        load_resplit(missing)
    msg = str(info.value)
    assert str(missing) in msg and "does not exist" in msg
    assert f"python -m fmnist.data.prepare --out {missing}" in msg
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match=f"^dataset folder {tmp_path / 'a-file'} is a file, not a folder: point "
                                        "data.dir at the folder holding data.parquet, train.csv, test.csv .or build "
                                        "one with: python -m fmnist.data.prepare --out NEW_FOLDER.$"):
        load_resplit(tmp_path / "a-file")
    (tmp_path / "partial").mkdir()  # a folder without its files: the hint builds elsewhere (prepare refuses it)
    (tmp_path / "partial" / "data.parquet").write_text("")
    with pytest.raises(DataError, match="train.csv: file not found; .* --out NEW_FOLDER"):
        load_resplit(tmp_path / "partial")


def test_path_to_a_file_of_the_folder(make_resplit, tmp_path: Path) -> None:
    """data.dir=.../data.parquet means its folder: read it, and never auto-build a folder named data.parquet."""
    s = make_resplit()
    assert_matches(load_resplit(s.parquet), s)
    assert prepare.ensure_resplit(s.train_csv, auto_prepare=False) == s.path
    with pytest.raises(DataError, match=f"dataset folder {tmp_path / 'new'} does not exist"):
        prepare.ensure_resplit(tmp_path / "new" / "data.parquet", auto_prepare=False)


def _label(s, i):
    return int(s.train_labels[i])


BAD_INPUTS = {
    "missing_parquet": lambda s: ["data.parquet", "file not found", "python -m fmnist.data.prepare --out"],
    "missing_train_csv": lambda s: ["train.csv", "file not found"],
    "missing_test_csv": lambda s: ["test.csv", "file not found"],
    "garbage_parquet": lambda s: ["data.parquet", "cannot read parquet file"],
    "truncated_parquet": lambda s: ["data.parquet", "cannot read parquet file"],
    "no_image_column": lambda s: ["data.parquet", "missing column image"],
    "no_id_split_columns": lambda s: ["data.parquet", "missing columns id, split"],
    "csv_no_id_column": lambda s: ["train.csv", "missing column id", "found: idx, label", "header line 'id,label'"],
    "csv_two_id_columns": lambda s: ["train.csv", "more than one column is named id", "found: id, ID"],
    "empty_csv": lambda s: ["test.csv", "empty"],
    "csv_bad_id": lambda s: ["train.csv", "'abc'", "not an integer"],
    "duplicate_parquet_id": lambda s: ["data.parquet", f"duplicate id {s.train_ids[0]}"],
    "duplicate_csv_id": lambda s: ["train.csv", "duplicate id"],
    "csv_id_not_in_parquet": lambda s: ["test.csv", "id 999999 is not in", "data.parquet"],
    "csv_id_between_parquet_ids": lambda s: ["test.csv", f"id {s.unused_id_between()} is not in", "data.parquet"],
    "parquet_id_not_in_csv": lambda s: ["data.parquet", f"id {s.test_ids[0]}", "neither train.csv nor test.csv"],
    "train_test_overlap": lambda s: ["train.csv", "test.csv", f"id {s.train_ids[0]} is in both"],
    "parquet_label_10": lambda s: ["data.parquet", f"label 10 for id {s.train_ids[7]}", "outside 0..9"],
    "parquet_label_float": lambda s: ["data.parquet", f"2.5 for id {s.train_ids[7]}", "not an integer"],
    "parquet_label_string": lambda s: ["data.parquet", "column label has type string"],
    "csv_label_negative": lambda s: ["train.csv", f"label -1 for id {s.train_ids[9]}", "outside 0..9"],
    "csv_label_10": lambda s: ["train.csv", f"label 10 for id {s.train_ids[9]}", "outside 0..9"],
    "csv_label_text": lambda s: ["test.csv", f"'shoe' for id {s.test_ids[2]}", "not an integer"],
    "csv_label_fraction": lambda s: ["train.csv", "3.5", "not an integer"],
    "label_disagreement": lambda s: [
        "data.parquet",
        "train.csv",
        f"labels disagree for id {s.train_ids[5]}",
        f"{_label(s, 5)} in data.parquet",
        f"{(_label(s, 5) + 1) % 10} in train.csv",
    ],
    "split_disagreement": lambda s: ["data.parquet", f"'test' for id {s.train_ids[4]}", "train.csv lists it"],
    "bad_split_value": lambda s: ["data.parquet", "'validation'", f"id {s.test_ids[1]}"],
    "partial_train_labels": lambda s: ["data.parquet", "1 of 200 train rows have no label", f"id {s.train_ids[3]}"],
    "garbage_png": lambda s: ["data.parquet", f"image for id {s.train_ids[11]}", "28x28 grayscale", "PNG"],
    "truncated_png": lambda s: ["data.parquet", f"image for id {s.train_ids[11]}", "PNG"],
    "jpeg_image": lambda s: ["data.parquet", f"image for id {s.train_ids[11]}", "PNG"],
    "wrong_size_png": lambda s: ["data.parquet", f"image for id {s.test_ids[3]}", "27x28"],
    "rgb_png": lambda s: ["data.parquet", f"image for id {s.test_ids[3]}", "'RGB', not gray without loss"],
    "null_image": lambda s: ["data.parquet", f"image for id {s.test_ids[3]}", "no PNG bytes"],
    "image_path_only": lambda s: [
        "data.parquet", f"image for id {s.train_ids[2]}", f"image.path is 'images/{s.train_ids[2]}.png'", "image.bytes"
    ],
    "no_train_labels": lambda s: ["the train split has no labels (data.parquet has no label values for train rows "
                                  "and train.csv has no label column or it is empty)"],
    "parquet_id_strings": lambda s: ["data.parquet: column id has type string; expected integers"],
    "parquet_id_null": lambda s: ["data.parquet: column id has 1 missing value(s)"],
    "image_column_int": lambda s: ["data.parquet: column image has type int64; expected struct<bytes: binary"],
    "image_bytes_not_binary": lambda s: ["data.parquet: column image has field bytes of type int64; expected binary"],
    "csv_extra_field": lambda s: ["train.csv: cannot read CSV (", "Expected 2 fields in line 4, saw 3)"],
}


def test_every_corruption_is_tested(resplit_corruptions) -> None:
    assert set(BAD_INPUTS) == set(resplit_corruptions)


@pytest.mark.parametrize("corruption", sorted(BAD_INPUTS))
def test_bad_input(make_resplit, corruption: str, tmp_path: Path) -> None:
    s = make_resplit(corrupt=corruption)
    with pytest.raises(DataError) as info:
        load_resplit(s.path, cache_dir=tmp_path / "cache")
    msg = str(info.value)
    for fragment in BAD_INPUTS[corruption](s):
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    assert "\n" not in msg
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("*.npz"))


# ------------------------------------------------------------------------------------------ cache


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("resplit-*.npz"))


def test_cache_second_load_is_fast_and_equal(make_resplit, decode_calls) -> None:
    s = make_resplit()
    first = load_resplit(s.path)
    assert len(decode_calls) == 2
    [cache_file] = _cache_files(s.path / ".fmnist_cache")
    start = time.perf_counter()
    second = load_resplit(s.path)
    assert time.perf_counter() - start < 0.5
    assert len(decode_calls) == 2  # no decoding: served from the cache
    assert_matches(second, s)
    assert_set_equal(second.train, first.train.ids, first.train.images, first.train.labels)
    assert not list((s.path / ".fmnist_cache").glob("*.tmp"))
    assert cache_file.stat().st_mode & 0o777 == 0o666 & ~resplit._UMASK  # readable by the folder's other users


def test_cache_hidden_test_labels(make_resplit, decode_calls) -> None:
    s = make_resplit(hide_test_labels=True)
    load_resplit(s.path)
    got = load_resplit(s.path)
    assert len(decode_calls) == 2 and got.test.labels is None


@pytest.mark.parametrize("change", ["touch", "rewrite"])
@pytest.mark.parametrize("name", ["data.parquet", "train.csv", "test.csv"])
def test_cache_invalidated_by_source_change(make_resplit, decode_calls, name: str, change: str) -> None:
    s = make_resplit()
    load_resplit(s.path)
    path = s.path / name
    st = path.stat()
    if change == "touch":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    else:  # rewritten in place with the same size; mtime advanced explicitly because the kernel's
        # coarse file clock could give the same mtime_ns to two writes a few milliseconds apart
        path.write_bytes(path.read_bytes())
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000))
    load_resplit(s.path)
    assert len(decode_calls) == 4
    assert len(_cache_files(s.path / ".fmnist_cache")) == 1  # the stale cache file was replaced


def test_cache_sees_modified_content(make_resplit) -> None:
    s = make_resplit()
    assert load_resplit(s.path).test.labels is not None
    lines = s.test_csv.read_text().splitlines()
    s.test_csv.write_text("id\n" + "\n".join(ln.split(",")[0] for ln in lines[1:]) + "\n")
    table = s.read_table()
    labels = table.column("label").to_numpy()
    is_test = table.column("split").to_numpy(zero_copy_only=False) == "test"
    s.set_column("label", pa.array(labels, pa.int64(), mask=is_test))
    assert load_resplit(s.path).test.labels is None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped_byte", "empty"])
def test_corrupt_cache_is_rebuilt(make_resplit, decode_calls, damage: str) -> None:
    s = make_resplit()
    load_resplit(s.path)
    [cache_file] = _cache_files(s.path / ".fmnist_cache")
    data = bytearray(cache_file.read_bytes())
    if damage == "garbage":
        data = bytearray(b"not a zip file" * 100)
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped_byte":
        data[len(data) // 2] ^= 0xFF  # inside the image arrays: caught by the zip CRC check
    else:
        data = bytearray()
    cache_file.write_bytes(bytes(data))
    assert_matches(load_resplit(s.path), s)
    assert len(decode_calls) == 4
    assert_matches(load_resplit(s.path), s)  # rebuilt cache is valid again
    assert len(decode_calls) == 4


def test_cache_of_inconsistent_arrays_is_rebuilt(make_resplit, decode_calls) -> None:
    """A cache file that is a valid zip with the right key but arrays that cannot be a dataset (a label 12, ids out
    of order) is never trusted."""
    s = make_resplit()
    load_resplit(s.path)
    [cache_file] = _cache_files(s.path / ".fmnist_cache")
    with np.load(cache_file, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    no_train_labels = {k: v for k, v in arrays.items() if k != "train_labels"}
    for name, edit in (("train_labels", lambda a: np.where(np.arange(a.size) == 3, 12, a)),
                       ("train_labels", lambda a: np.where(np.arange(a.size) == 3, 10, a)),  # one past the classes
                       ("test_ids", lambda a: a[::-1].copy()), (None, None)):
        with open(cache_file, "wb") as f:
            np.savez(f, **({**arrays, name: edit(arrays[name])} if name else no_train_labels))
        decoded = len(decode_calls)
        assert_matches(load_resplit(s.path), s)
        assert len(decode_calls) == decoded + 2  # decoded again, not served from the cache


def test_explicit_cache_dir(make_resplit, tmp_path: Path, decode_calls) -> None:
    s = make_resplit()
    cache = tmp_path / "my-cache"
    load_resplit(s.path, cache_dir=cache)
    assert len(_cache_files(cache)) == 1 and not (s.path / ".fmnist_cache").exists()
    assert_matches(load_resplit(s.path, cache_dir=cache), s)
    assert len(decode_calls) == 2
    (tmp_path / "link").symlink_to(s.path)  # the same folder by another path: the same cache file
    assert_matches(load_resplit(tmp_path / "link", cache_dir=cache), s)
    assert len(decode_calls) == 2 and len(_cache_files(cache)) == 1


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: relative paths are invalid
    assert resplit._user_cache_dir() == Path.home() / ".cache" / "fmnist"


def test_data_read_while_its_files_change_is_not_cached(make_resplit, monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_resplit()
    real = resplit._load_uncached

    def changed_meanwhile(*args, **kwargs):
        got = real(*args, **kwargs)
        st = s.train_csv.stat()
        os.utime(s.train_csv, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # e.g. a copy still arriving
        return got

    monkeypatch.setattr(resplit, "_load_uncached", changed_meanwhile)
    load_resplit(s.path)
    assert not _cache_files(s.path / ".fmnist_cache")


def test_cache_falls_back_when_blocked(make_resplit, decode_calls, _isolated_user_cache: Path) -> None:
    s = make_resplit()
    (s.path / ".fmnist_cache").write_text("a file where the cache folder should be")
    load_resplit(s.path)
    assert len(_cache_files(_isolated_user_cache / "fmnist")) == 1
    assert_matches(load_resplit(s.path), s)
    assert len(decode_calls) == 2


def test_no_home_folder_leaves_only_the_local_cache(make_resplit, decode_calls,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """HOME unset and the user unknown to the system (a container's arbitrary uid, a node whose user lookup is down):
    Path.home() raises, and every load failed with 'RuntimeError: Could not determine home directory.', even with a
    writable dataset folder. The user cache is left out then; a folder with no writable cache only warns."""
    import pwd

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    s = make_resplit()
    assert_matches(load_resplit(s.path), s)
    assert len(_cache_files(s.path / ".fmnist_cache")) == 1
    (s.path / ".fmnist_cache" / _cache_files(s.path / ".fmnist_cache")[0].name).unlink()
    (s.path / ".fmnist_cache").rmdir()
    (s.path / ".fmnist_cache").write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="could not write the decoded-dataset cache"):
        assert_matches(load_resplit(s.path), s)


def test_a_shared_cache_folder_keeps_each_data_folders_cache(make_resplit, tmp_path: Path, decode_calls) -> None:
    """Two data folders with one data.cache_dir: each folder's cache file is named after its path, so a folder whose
    files have the same names, sizes and times as another's (but other labels) is not served the other's arrays,
    and writing one folder's cache leaves the other's in place."""
    a, b = make_resplit("a", labels_in_parquet=False), make_resplit("b", labels_in_parquet=False)  # the same data
    i, j = next((i, j) for i in range(len(b.train_ids)) for j in range(i) if b.train_labels[i] != b.train_labels[j])
    lines = b.train_csv.read_text().splitlines()
    swap = {str(b.train_ids[i]): b.train_labels[j], str(b.train_ids[j]): b.train_labels[i]}
    b.train_csv.write_text("\n".join(f"{ln.split(',')[0]},{swap[ln.split(',')[0]]}" if ln.split(",")[0] in swap
                                     else ln for ln in lines) + "\n")  # two labels swapped: the same size
    for name in ("data.parquet", "train.csv", "test.csv"):
        st = (a.path / name).stat()
        assert (b.path / name).stat().st_size == st.st_size
        os.utime(b.path / name, ns=(st.st_atime_ns, st.st_mtime_ns))
    cache = tmp_path / "shared-cache"
    assert_matches(load_resplit(a.path, cache_dir=cache), a)
    got = load_resplit(b.path, cache_dir=cache)
    assert (got.train.labels[i], got.train.labels[j]) == (b.train_labels[j], b.train_labels[i])
    assert len(decode_calls) == 4 and len(list(cache.glob("resplit-*.npz"))) == 2
    assert_matches(load_resplit(a.path, cache_dir=cache), a)
    assert len(decode_calls) == 4  # a's cache is still there


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_cache_falls_back_when_read_only(make_resplit, decode_calls, _isolated_user_cache: Path) -> None:
    s = make_resplit()
    s.path.chmod(0o555)
    try:
        load_resplit(s.path)
        assert_matches(load_resplit(s.path), s)
    finally:
        s.path.chmod(0o755)
    assert len(_cache_files(_isolated_user_cache / "fmnist")) == 1
    assert len(decode_calls) == 2


def test_no_writable_cache_warns_but_loads(make_resplit, monkeypatch, tmp_path: Path) -> None:
    s = make_resplit()
    (s.path / ".fmnist_cache").write_text("blocked")
    blocker = tmp_path / "xdg-file"
    blocker.write_text("blocked")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.warns(RuntimeWarning, match="could not write the decoded-dataset cache"):
        got = load_resplit(s.path)
    assert_matches(got, s)


# ------------------------------------------------------------------------------------ real data


@pytest.mark.slow
def test_real_official(official_resplit_dir: Path, real_raw_dir: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    got = load_resplit(official_resplit_dir, cache_dir=tmp_path / "cache")
    uncached = time.perf_counter() - start
    start = time.perf_counter()
    cached = load_resplit(official_resplit_dir, cache_dir=tmp_path / "cache")
    cached_s = time.perf_counter() - start
    print(f"\nreal Resplit load: uncached {uncached:.2f} s, cached {cached_s:.3f} s")
    assert cached_s < 1.0

    raw = {k: read_idx(prepare._raw_file(real_raw_dir, stem)) for k, stem in prepare.RAW_STEMS.items()}
    assert len(got.train) == 60_000 and len(got.test) == 10_000
    assert_set_equal(got.train, np.arange(60_000), raw["train_images"], raw["train_labels"])
    assert_set_equal(got.test, np.arange(60_000, 70_000), raw["test_images"], raw["test_labels"])
    assert_set_equal(cached.train, got.train.ids, got.train.images, got.train.labels)
    assert_set_equal(cached.test, got.test.ids, got.test.images, got.test.labels)
    np.testing.assert_array_equal(np.bincount(got.train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(got.test.labels), [1000] * 10)


@pytest.mark.slow
def test_real_random(real_raw_dir: Path, tmp_path: Path) -> None:
    out = build_resplit(tmp_path / "random", mode="random", seed=0, raw_dir=real_raw_dir)
    train = pd.read_csv(out / "train.csv")
    test = pd.read_csv(out / "test.csv")
    assert len(train) == 60_000 and len(test) == 10_000
    assert not set(train.id) & set(test.id)
    np.testing.assert_array_equal(np.sort(np.concatenate([train.id, test.id])), np.arange(70_000))
    assert train.id.is_monotonic_increasing and test.id.is_monotonic_increasing
    np.testing.assert_array_equal(test.id, np.flatnonzero(prepare._random_test_mask(70_000, 10_000, 0)))

    raw_labels = np.concatenate([read_idx(prepare._raw_file(real_raw_dir, prepare.RAW_STEMS[k]))
                                 for k in ("train_labels", "test_labels")])
    np.testing.assert_array_equal(train.label, raw_labels[train.id])
    np.testing.assert_array_equal(test.label, raw_labels[test.id])
    counts = np.bincount(train.label, minlength=10)
    assert counts.sum() == 60_000 and counts.min() != counts.max()  # not stratified

    table = pq.read_table(out / "data.parquet")
    np.testing.assert_array_equal(table.column("id").to_numpy(), np.arange(70_000))
    split = np.asarray(table.column("split").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(np.flatnonzero(split == "test"), test.id)
    raw_images = np.concatenate([read_idx(prepare._raw_file(real_raw_dir, prepare.RAW_STEMS[k]))
                                 for k in ("train_images", "test_images")])
    blobs = table.column("image").combine_chunks().field("bytes")
    for i in np.random.default_rng(0).choice(70_000, 300, replace=False):
        assert blobs[int(i)].as_py() == prepare._encode_chunk(raw_images[i : i + 1])[0]


@pytest.mark.slow  # loads the real official folder (session fixture)
def test_official_test_set_is_recognised_by_content(real_raw_dir: Path, official_resplit_dir: Path) -> None:
    """The analysis says whether the runs used the official test set: the t10k images and labels, whatever their
    ids or order; a re-split's test set or a single changed image is not it."""
    assert resplit.is_official_test(load_resplit(official_resplit_dir).test) is True
    # and the whole folder prepare builds, train split and ids included, has the known fingerprint
    assert resplit.data_fingerprint(load_resplit(official_resplit_dir)) == resplit.OFFICIAL_RESPLIT_FINGERPRINT
    images = {k: read_idx(prepare._raw_file(real_raw_dir, prepare.RAW_STEMS[k]))
              for k in ("train_images", "train_labels", "test_images", "test_labels")}
    perm = np.random.default_rng(0).permutation(10_000)
    shuffled = ImageSet(np.arange(10_000) + 5, images["test_images"][perm], images["test_labels"][perm])
    assert resplit.is_official_test(shuffled) is True
    changed = images["test_images"].copy()
    changed[123, 0, 0] ^= 1
    assert resplit.is_official_test(ImageSet(np.arange(10_000), changed, images["test_labels"])) is False
    all_images = np.concatenate([images["train_images"], images["test_images"]])
    all_labels = np.concatenate([images["train_labels"], images["test_labels"]])
    test_ids = np.flatnonzero(prepare._random_test_mask(70_000, 10_000, 0))  # --mode random's test set
    assert resplit.is_official_test(ImageSet(test_ids, all_images[test_ids], all_labels[test_ids])) is False
    assert resplit.is_official_test(ImageSet(np.arange(10_000), images["test_images"], None)) is None


def test_random_split_determinism() -> None:
    a = prepare._random_test_mask(70_000, 10_000, seed=0)
    b = prepare._random_test_mask(70_000, 10_000, seed=0)
    c = prepare._random_test_mask(70_000, 10_000, seed=1)
    assert a.sum() == 10_000
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


# ---------------------------------------------------------------------------------------- builder


def test_build_official_from_fake_raw(fake_raw_dir, tmp_path: Path) -> None:
    raw = fake_raw_dir
    out = build_resplit(tmp_path / "ds", raw_dir=raw.path)
    assert out == (tmp_path / "ds").absolute()
    assert sorted(p.name for p in out.iterdir()) == ["data.parquet", "test.csv", "train.csv"]
    schema = pq.read_schema(out / "data.parquet")
    assert schema.field("id").type == pa.int64()
    assert schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("split").type == pa.string()
    assert schema.field("label").type == pa.int64()
    table = pq.read_table(out / "data.parquet")
    assert table.column_names == ["id", "image", "split", "label"]
    assert table.column("image").combine_chunks().field("path").null_count == 150
    assert list(pd.read_csv(out / "train.csv").columns) == ["id", "label"]
    assert list(pd.read_csv(out / "test.csv").columns) == ["id", "label"]

    got = load_resplit(out)
    assert_set_equal(got.train, np.arange(120), raw.train_images, raw.train_labels)
    assert_set_equal(got.test, np.arange(120, 150), raw.test_images, raw.test_labels)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]  # no temp folders left


def test_build_random_and_hidden(fake_raw_dir, tmp_path: Path) -> None:
    raw = fake_raw_dir
    images = np.concatenate([raw.train_images, raw.test_images])
    labels = np.concatenate([raw.train_labels, raw.test_labels])
    a = build_resplit(tmp_path / "a", mode="random", seed=5, raw_dir=raw.path)
    b = build_resplit(tmp_path / "b", mode="random", seed=5, raw_dir=raw.path)
    c = build_resplit(tmp_path / "c", mode="random", seed=6, raw_dir=raw.path, hide_test_labels=True)
    for name in ("train.csv", "test.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert pq.read_table(a / "data.parquet").equals(pq.read_table(b / "data.parquet"))
    ra, rc = load_resplit(a), load_resplit(c)
    assert len(ra.train) == 120 and len(ra.test) == 30
    np.testing.assert_array_equal(np.sort(np.concatenate([ra.train.ids, ra.test.ids])), np.arange(150))
    assert not np.array_equal(ra.test.ids, rc.test.ids)
    for got in (ra.train, ra.test, rc.train):
        np.testing.assert_array_equal(got.images, images[got.ids])
        np.testing.assert_array_equal(got.labels, labels[got.ids])
    assert rc.test.labels is None
    assert list(pd.read_csv(c / "test.csv").columns) == ["id"]
    assert pq.read_table(c / "data.parquet").column("label").null_count == 30


def test_build_refuses_non_empty_out(fake_raw_dir, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    build_resplit(out, raw_dir=fake_raw_dir.path)  # an empty folder is fine
    before = (out / "train.csv").read_bytes()
    with pytest.raises(DataError, match="not empty.*--force"):
        build_resplit(out, mode="random", seed=1, raw_dir=fake_raw_dir.path)
    assert (out / "train.csv").read_bytes() == before
    build_resplit(out, mode="random", seed=1, raw_dir=fake_raw_dir.path, force=True)
    assert (out / "train.csv").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp/old folders left


def test_build_crash_leaves_nothing(fake_raw_dir, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "ds"
    build_resplit(out, raw_dir=fake_raw_dir.path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    import pandas as pd

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(DataError, match="cannot write"):
        build_resplit(out, mode="random", raw_dir=fake_raw_dir.path, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old folder untouched
    with pytest.raises(DataError):
        build_resplit(tmp_path / "new", raw_dir=fake_raw_dir.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_a_forced_build_stopped_as_it_swaps_the_folders_keeps_the_old_one(fake_raw_dir, tmp_path: Path,
                                                                           stop_at_rename) -> None:
    """Ctrl-C (or a failed rename) between moving the old folder aside and the new one in: the dataset folder was
    gone, the old one hidden in .ds.old-*/ and the new one deleted."""
    out = tmp_path / "ds"
    build_resplit(out, raw_dir=fake_raw_dir.path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    stop_at_rename(2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        build_resplit(out, mode="random", seed=1, raw_dir=fake_raw_dir.path, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize(("stem", "array", "message"), [
    ("train-images-idx3-ubyte", np.zeros((120, 28, 27), np.uint8),
     "train-images-idx3-ubyte.gz: expected uint8 images of shape [N, 28, 28], got uint8 (120, 28, 27)"),
    ("t10k-labels-idx1-ubyte", np.zeros(29, np.uint8),
     "t10k-labels-idx1-ubyte: expected 30 uint8 labels (one per image in t10k-images-idx3-ubyte.gz), got uint8 (29,)"),
    ("train-labels-idx1-ubyte", np.full(120, 10, np.uint8), "train-labels-idx1-ubyte: label 10 is outside 0..9"),
])
def test_raw_files_that_are_not_fashion_mnist_are_named(fake_raw_dir, tmp_path: Path, write_idx, stem: str,
                                                        array: np.ndarray, message: str) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(fake_raw_dir.path, raw)
    [path] = [p for p in raw.iterdir() if p.name.startswith(stem)]
    write_idx(path, array, compress=path.suffix == ".gz")
    with pytest.raises(DataError, match=re.escape(message)):
        build_resplit(tmp_path / "ds", raw_dir=raw)
    assert not (tmp_path / "ds").exists()


def test_build_refuses_a_file_as_out(fake_raw_dir, tmp_path: Path) -> None:
    (tmp_path / "ds").write_text("mine")
    with pytest.raises(DataError, match=r"ds: exists and is not a folder; remove it or pass --force"):
        build_resplit(tmp_path / "ds", raw_dir=fake_raw_dir.path)
    assert (tmp_path / "ds").read_text() == "mine"


def test_build_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown mode 'stratified'"):
        build_resplit(tmp_path / "x", mode="stratified")


def test_parallel_encoding_matches_serial() -> None:
    images = np.random.default_rng(0).integers(0, 256, (prepare._PARALLEL_MIN_IMAGES, 28, 28), dtype=np.uint8)
    assert prepare._encode_pngs(images, workers=2) == prepare._encode_chunk(images)


# ------------------------------------------------------------------------------------------- raw


def test_read_idx_plain_and_gz(tmp_path: Path, write_idx) -> None:
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "a", a, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)


@pytest.mark.parametrize(("code", "dtype"), [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")])
def test_read_idx_reads_big_endian_multibyte_types_into_native_writable_arrays(tmp_path: Path, code: int,
                                                                              dtype: str) -> None:
    """The IDX format stores its data most significant byte first (as its header); read_idx returns the values in
    the machine's byte order, in an array of its own."""
    values = np.array([[1, -2, 3], [100, -100, 127]])
    path = tmp_path / "x-idx2"
    path.write_bytes(bytes([0, 0, code, 2]) + struct.pack(">2I", 2, 3) + values.astype(dtype).tobytes())
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype).newbyteorder("=") and got.dtype.isnative and got.flags.writeable
    np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"\x01\x02\x03\x04rest", "bad magic"),
        (b"", "bad magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated or corrupt"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "truncated or corrupt"),  # more data than the header says
        (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")[:-6], "corrupt gzip"),
        (None, "file not found"),
    ],
    ids=["magic", "empty", "header", "data", "trailing", "gzip", "missing"],
)
def test_read_idx_errors(tmp_path: Path, content: bytes | None, fragment: str) -> None:
    path = tmp_path / "x-idx1-ubyte"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_find_raw_dir_env(fake_raw_dir, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(prepare.RAW_ENV, str(fake_raw_dir.path))
    assert find_raw_dir() == fake_raw_dir.path
    monkeypatch.setenv(prepare.RAW_ENV, str(tmp_path))
    with pytest.raises(DataError, match=f"{prepare.RAW_ENV}=.*lacks train-images-idx3-ubyte"):
        find_raw_dir()


def test_find_raw_dir_fallbacks(fake_raw_dir, monkeypatch, tmp_path: Path, _isolated_user_cache: Path) -> None:
    monkeypatch.delenv(prepare.RAW_ENV, raising=False)
    monkeypatch.setattr(prepare, "DEBIAN_RAW_DIR", tmp_path / "no-debian")

    def no_network(root: Path) -> Path:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(prepare, "_download_with_torchvision", no_network)
    with pytest.raises(DataError) as info:
        find_raw_dir()
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg and prepare.RAW_ENV in msg
    assert "Error downloading" in msg and str(_isolated_user_cache / "fmnist" / "raw") in msg

    def fake_download(root: Path) -> Path:
        folder = root / "FashionMNIST" / "raw"
        folder.mkdir(parents=True)
        for f in fake_raw_dir.path.iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        return folder

    monkeypatch.setattr(prepare, "_download_with_torchvision", fake_download)
    assert find_raw_dir() == _isolated_user_cache / "fmnist" / "raw" / "FashionMNIST" / "raw"


def test_ensure_resplit(fake_raw_dir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(prepare.RAW_ENV, str(fake_raw_dir.path))
    out = tmp_path / "sub" / "auto"
    with pytest.raises(DataError, match="does not exist.*python -m fmnist.data.prepare --out"):
        prepare.ensure_resplit(out, auto_prepare=False)
    assert not out.exists()
    with ThreadPoolExecutor(3) as pool:  # concurrent sweep jobs: one builds, the others wait and reuse it
        results = list(pool.map(lambda _: prepare.ensure_resplit(out, mode="random", seed=2), range(3)))
    assert all(r == out for r in results)
    assert len(load_resplit(out).test) == 30
    mtime = (out / "data.parquet").stat().st_mtime_ns
    assert prepare.ensure_resplit(out, auto_prepare=False) == out  # existing: returned as is, not rebuilt
    assert (out / "data.parquet").stat().st_mtime_ns == mtime
    assert not list(out.parent.glob(".*.lock"))  # the builders' lock file goes with the build


def test_auto_prepare_auto_builds_the_default_folder_alone(fake_raw_dir, tmp_path: Path, monkeypatch) -> None:
    """data.auto_prepare=auto (the default): a missing default folder is built; any other missing folder is more
    likely a mistyped path to the user's own copy, and is refused with the command that would build it."""
    monkeypatch.setenv(prepare.RAW_ENV, str(fake_raw_dir.path))
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "FashionMNIST-Resplt"
    with pytest.raises(DataError, match=re.escape(f"dataset folder {typo} does not exist; data.dir names your "
                                                  "FashionMNIST-Resplit folder (a typo?). To build the official "
                                                  f"split there instead: python -m fmnist.data.prepare --out {typo}")):
        prepare.ensure_resplit(typo, auto_prepare="auto")
    assert not typo.exists()
    built = prepare.ensure_resplit(prepare.DEFAULT_DIR, auto_prepare="auto")
    assert built.resolve() == tmp_path / prepare.DEFAULT_DIR
    assert_set_equal(load_resplit(built).test, np.arange(120, 150), fake_raw_dir.test_images, fake_raw_dir.test_labels)


# ------------------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "fmnist.data.prepare", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli(fake_raw_dir, tmp_path: Path) -> None:
    out = tmp_path / "cli-ds"
    first = _cli("--out", str(out), "--raw", str(fake_raw_dir.path))
    assert first.returncode == 0, first.stderr
    assert f"wrote {out}" in first.stdout and "120 train + 30 test" in first.stdout
    assert load_resplit(out).test.labels is not None

    again = _cli("--out", str(out), "--raw", str(fake_raw_dir.path), "--mode", "random")
    assert again.returncode == 1
    assert "not empty" in again.stderr and "--force" in again.stderr and "Traceback" not in again.stderr

    forced = _cli("--out", str(out), "--raw", str(fake_raw_dir.path), "--mode", "random", "--seed", "3",
                  "--hide-test-labels", "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_resplit(out).test.labels is None


def test_ctrl_c_stops_the_builder_with_one_line_and_no_folder(fake_raw_dir, tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the PNGs are encoded: one line and exit status 130 (it was a KeyboardInterrupt traceback from
    the process pool), and neither the folder nor its half-built temp folder is left."""
    def interrupted(images):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "_encode_pngs", interrupted)
    out = tmp_path / "d"
    try:
        assert prepare.main(["--out", str(out), "--raw", str(fake_raw_dir.path)]) == 130
    except KeyboardInterrupt:  # let through, pytest would stop as if the user had pressed Ctrl-C
        pytest.fail("KeyboardInterrupt escaped prepare.main")
    assert capsys.readouterr().err == f"interrupted: {out} was not written; run the same command again\n"
    assert not out.exists() and not list(tmp_path.glob(".d.tmp-*"))


def test_main_in_process(fake_raw_dir, tmp_path: Path, capsys) -> None:
    assert prepare.main(["--out", str(tmp_path / "d"), "--raw", str(tmp_path / "empty-raw")]) == 1
    assert "missing raw file" in capsys.readouterr().err
    assert prepare.main(["--out", str(tmp_path / "d"), "--raw", str(fake_raw_dir.path)]) == 0
    assert "data.parquet" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- split


def _uneven_labels(n: int = 1003, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(10, size=n, p=np.linspace(1, 3, 10) / np.linspace(1, 3, 10).sum()).astype(np.int64)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_stratified_split(fraction: float) -> None:
    labels = _uneven_labels()
    train, val = stratified_split(labels, fraction, seed=0)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert not np.intersect1d(train, val).size
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(labels.size))
    halves = 0
    for c in range(10):
        n_c = int((labels == c).sum())
        wanted = n_c * fraction
        # round(n_c * val_fraction), halves rounded up (the documented size: seeds of any sweep share it)
        expected = int(wanted) + (wanted - int(wanted) >= 0.5)
        assert int((labels[val] == c).sum()) == expected, c
        halves += wanted - int(wanted) >= 0.5
    assert halves  # a class whose share rounds up, so that rounding down would fail


def test_stratified_split_deterministic() -> None:
    labels = _uneven_labels()
    a = stratified_split(labels, 0.2, seed=1)
    b = stratified_split(labels, 0.2, seed=1)
    c = stratified_split(labels, 0.2, seed=2)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_stratified_split_zero() -> None:
    labels = _uneven_labels()
    train, val = stratified_split(labels, 0.0, seed=0)
    assert val.size == 0 and val.dtype == np.int64
    np.testing.assert_array_equal(train, np.arange(labels.size))


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan"), "0.1", True, None])
def test_stratified_split_invalid(fraction) -> None:
    with pytest.raises(DataError, match="val_fraction"):
        stratified_split(_uneven_labels(), fraction, seed=0)


@pytest.mark.parametrize("n", [1, 10, 137, 500])
def test_subset_indices(n: int) -> None:
    labels = _uneven_labels()
    pool, _ = stratified_split(labels, 0.2, seed=0)
    sub = subset_indices(labels, pool, n, seed=0)
    assert sub.dtype == np.int64 and sub.size == n and np.all(np.diff(sub) > 0)
    assert np.isin(sub, pool).all()
    np.testing.assert_array_equal(sub, subset_indices(labels, pool, n, seed=0))
    pool_counts = np.bincount(labels[pool], minlength=10)
    sub_counts = np.bincount(labels[sub], minlength=10)
    exact = pool_counts * n / pool.size
    assert np.all(np.abs(sub_counts - exact) < 1)
    # largest remainders: every class rounded up has a fractional share at least that of every class rounded down
    up, down = sub_counts > np.floor(exact), sub_counts == np.floor(exact)
    if up.any() and down.any():
        assert (exact - np.floor(exact))[up].min() >= (exact - np.floor(exact))[down].max()
    if n > 10:
        assert not np.array_equal(sub, subset_indices(labels, pool, n, seed=1))


def test_load_splits_keeps_the_validation_images_out_of_training_and_every_test_image_in_the_test_split(
        make_resplit) -> None:
    """data.subset draws the training images from what the validation split left (a subset drawn from all training
    ids would train on validation images); the test split is the whole test set, in id order, with its labels."""
    import torch

    from fmnist.data.loader import load_splits

    s = make_resplit()
    splits = load_splits(s.path, torch.device("cpu"), val_fraction=0.25, subset=120, split_seed=3)
    train_ids, val_ids = splits.train.ids, splits.val.ids
    _, val_idx = stratified_split(s.train_labels, 0.25, seed=3)
    assert len(train_ids) == 120 and len(val_ids) == len(val_idx) and not np.intersect1d(train_ids, val_ids).size
    np.testing.assert_array_equal(val_ids, s.train_ids[val_idx])  # the split a run without subset validates on
    train_idx, _ = stratified_split(s.train_labels, 0.25, seed=3)  # data.split_seed also draws the subset
    np.testing.assert_array_equal(train_ids, s.train_ids[subset_indices(s.train_labels, train_idx, 120, seed=3)])
    for split, ids, labels, images in ((splits.train, s.train_ids, s.train_labels, s.train_images),
                                       (splits.test, s.test_ids, s.test_labels, s.test_images)):
        rows = np.searchsorted(ids, split.ids)
        np.testing.assert_array_equal(split.labels.numpy(), labels[rows])
        np.testing.assert_array_equal(split.images[:, 0].numpy(), images[rows])
    np.testing.assert_array_equal(splits.test.ids, s.test_ids)


def test_load_splits_without_a_validation_fraction_trains_on_every_training_image(make_resplit) -> None:
    """data.val_fraction=0: no validation split at all (None, which the trainer checks), not an empty one."""
    import torch

    from fmnist.data.loader import load_splits

    s = make_resplit()
    splits = load_splits(s.path, torch.device("cpu"), val_fraction=0.0)
    assert splits.val is None
    np.testing.assert_array_equal(splits.train.ids, s.train_ids)


def _device_split(n: int, hidden: bool = False):
    """A DeviceSplit of `n` random uint8 images whose labels are their positions (None when `hidden`)."""
    import torch

    from fmnist.data.loader import DeviceSplit

    images = torch.from_numpy(np.random.default_rng(n).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8))
    return DeviceSplit("s", np.arange(100, 100 + n), images, None if hidden else torch.arange(n))


def test_train_batches_show_every_image_once_per_epoch_in_a_new_random_order() -> None:
    import torch

    from fmnist.data.loader import normalize, to_unit_float, train_batches

    split = _device_split(10)
    torch.manual_seed(0)
    orders = []
    for _ in range(3):
        batches = list(train_batches(split, 4, None, drop_last=False))
        assert [len(y) for _, _, y in batches] == [4, 4, 2]
        for x, targets, y in batches:
            assert torch.equal(targets, y)
            assert torch.equal(x, normalize(to_unit_float(split.images[y])))  # each input with its own label
        orders.append(torch.cat([y for _, _, y in batches]).tolist())
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert len({tuple(order) for order in orders}) == 3, "the same order every epoch"
    dropped = torch.cat([y for _, _, y in train_batches(split, 4, None, drop_last=True)])
    assert len(dropped) == 8 and len(set(dropped.tolist())) == 8


def test_train_batches_augment_unit_range_images_then_normalise() -> None:
    """The augmentation gets [0, 1] intensities (its crop fills with 0 = black, its noise is in [0, 1)) with each
    image's index in the split and the epoch; what the model gets is the normalised result."""
    import torch

    from fmnist.data.loader import MEAN, STD, to_unit_float, train_batches

    split = _device_split(6)
    calls = []

    def augment(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, epoch: int):
        calls.append((x.clone(), index.clone(), epoch))
        return torch.zeros_like(x), torch.full((len(y), 10), 0.1)

    for x, targets, y in train_batches(split, 3, augment, epoch=7):
        assert torch.allclose(x, torch.full_like(x, -MEAN / STD))  # black, normalised
        assert torch.equal(targets, torch.full((3, 10), 0.1)) and y.dtype == torch.int64
    assert len(calls) == 2
    for seen, index, epoch in calls:
        assert torch.equal(seen, to_unit_float(split.images[index])) and epoch == 7


@pytest.mark.parametrize("hidden", [False, True], ids=["labelled", "hidden_labels"])
def test_eval_batches_yield_normalised_images_in_id_order(hidden: bool) -> None:
    import torch

    from fmnist.data.loader import eval_batches, normalize, to_unit_float

    split = _device_split(10, hidden=hidden)
    batches = list(eval_batches(split, 4))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([x for x, _ in batches]), normalize(to_unit_float(split.images)))
    if hidden:
        assert all(y is None for _, y in batches)
    else:
        assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(10))


def test_normalize_maps_the_dataset_mean_to_zero_and_one_std_above_it_to_one() -> None:
    import torch

    from fmnist.data.loader import MEAN, STD, normalize, to_unit_float

    assert torch.allclose(normalize(torch.tensor([MEAN, MEAN + STD, 0.0])), torch.tensor([0.0, 1.0, -MEAN / STD]))
    assert torch.equal(to_unit_float(torch.tensor([0, 51, 255], dtype=torch.uint8)), torch.tensor([0.0, 0.2, 1.0]))


def test_subset_all_and_errors() -> None:
    labels = _uneven_labels()
    pool = np.random.default_rng(0).permutation(labels.size)[:300]
    np.testing.assert_array_equal(subset_indices(labels, pool, None, seed=0), np.sort(pool))
    np.testing.assert_array_equal(subset_indices(labels, pool, 300, seed=0), np.sort(pool))
    with pytest.raises(DataError, match="301.*300"):
        subset_indices(labels, pool, 301, seed=0)
    for bad in (0, -5):
        with pytest.raises(DataError, match=f"^subset size must be positive, got {bad}$"):
            subset_indices(labels, pool, bad, seed=0)
    for bad in (True, 2.0, "5"):
        with pytest.raises(DataError, match=f"^subset size must be an integer or None, got {re.escape(repr(bad))}$"):
            subset_indices(labels, pool, bad, seed=0)


def test_split_helpers_refuse_arrays_that_are_not_1d_integers() -> None:
    labels = _uneven_labels()
    with pytest.raises(DataError, match=r"^labels must be a 1-D integer array, got float64 with shape \(1003,\)$"):
        stratified_split(labels.astype(float), 0.1, seed=0)
    with pytest.raises(DataError, match=r"^labels must be a 1-D integer array, got int64 with shape \(1003, 1\)$"):
        subset_indices(labels[:, None], np.arange(10), 5, seed=0)
    with pytest.raises(DataError, match=r"^indices must be a 1-D integer array, got float64 with shape \(10,\)$"):
        subset_indices(labels, np.arange(10.0), 5, seed=0)
    assert stratified_split(np.array([]), 0.1, seed=0)[0].size == 0  # an empty split: no dtype to check


@pytest.mark.parametrize(("n", "batch", "drop_last", "steps"), [
    (1024, 128, True, 8), (1100, 128, True, 8), (100, 128, True, 1),   # a split smaller than a batch: one batch
    (1100, 128, False, 9), (1025, 128, False, 8),                      # a last batch of one image is left out
    (100, 128, False, 1),
])
def test_steps_per_epoch(n: int, batch: int, drop_last: bool, steps: int) -> None:
    from fmnist.data.loader import steps_per_epoch

    assert steps_per_epoch(n, batch, drop_last) == steps


def test_a_batch_larger_than_the_training_split_is_named() -> None:
    """trainer.batch_size=100000 on data.subset=512 trained without a word on one batch of 512 an epoch; the run
    now logs this warning (fmnist.train.run)."""
    from fmnist.data.loader import oversized_batch

    assert oversized_batch(512, 100000) == ("trainer.batch_size=100000 is larger than the 512 training images: each "
                                            "epoch is one step on a batch of 512")
    assert oversized_batch(512, 512) is None and oversized_batch(60000, 128) is None
