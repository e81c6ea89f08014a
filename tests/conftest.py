"""Shared pytest fixtures.

Data fixtures (fmnist.data):
- ``make_resplit``: factory writing a small synthetic FashionMNIST-Resplit folder (optionally corrupted).
- ``fake_raw_dir``: a tiny set of raw IDX files (120 train + 30 t10k images) for fast builder tests.
- ``real_raw_dir`` / ``official_resplit_dir``: the real IDX files and the official folder built from them once
  per session (skipped when the raw files are not installed).
- ``real_resplit_dir``: the same training images with 1,000 of the official test images, for training runs.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

# The tests that Ctrl-C a run play a terminal's foreground job. A suite started in the background (`make test &`,
# `nohup`) ignores SIGINT, and the runs it starts would inherit that.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# ------------------------------------------------------------------------------ synthetic Resplit folder

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@dataclass
class SyntheticResplit:
    """A synthetic Resplit folder and the arrays written to it (sorted by id, as the reader returns them)."""

    path: Path
    train_ids: np.ndarray
    train_images: np.ndarray
    train_labels: np.ndarray
    test_ids: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray | None  # None when written hidden

    @property
    def parquet(self) -> Path:
        return self.path / "data.parquet"

    @property
    def train_csv(self) -> Path:
        return self.path / "train.csv"

    @property
    def test_csv(self) -> Path:
        return self.path / "test.csv"

    def read_table(self) -> pa.Table:
        return pq.read_table(self.parquet)

    def write_table(self, table: pa.Table) -> None:
        pq.write_table(table, self.parquet)

    def set_column(self, name: str, array: pa.Array | np.ndarray) -> None:
        table = self.read_table()
        column = pa.array(array) if isinstance(array, np.ndarray) else array
        table = table.set_column(table.column_names.index(name), name, column)
        self.write_table(table)

    def unused_id_between(self) -> int:
        """The smallest id between the folder's smallest and largest that no image has (ids are not contiguous)."""
        ids = set(np.concatenate([self.train_ids, self.test_ids]).tolist())
        return next(i for i in range(min(ids), max(ids)) if i not in ids)

    def row_of(self, table: pa.Table, id_: int) -> int:
        return int(np.flatnonzero(table.column("id").to_numpy() == id_)[0])

    def replace_image(self, id_: int, png: bytes | None) -> None:
        table = self.read_table()
        blobs = table.column("image").combine_chunks().field("bytes").to_pylist()
        blobs[self.row_of(table, id_)] = png
        image = pa.StructArray.from_arrays(
            [pa.array(blobs, pa.binary()), pa.nulls(len(blobs), pa.string())], fields=list(IMAGE_TYPE)
        )
        self.set_column("image", image)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_synthetic_resplit(
    path: Path,
    *,
    n_train: int = 200,
    n_test: int = 50,
    seed: int = 0,
    labels_in_parquet: bool = True,
    labels_in_csv: bool = True,
    hide_test_labels: bool = False,
) -> SyntheticResplit:
    """Write random 28x28 images with non-contiguous ids, parquet rows shuffled, in the users' layout.

    hide_test_labels: test labels null in the parquet and test.csv without a label column.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    ids = rng.choice(10 * n, size=n, replace=False).astype(np.int64)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    is_test = np.zeros(n, bool)
    is_test[rng.permutation(n)[:n_test]] = True

    path.mkdir(parents=True)
    rows = rng.permutation(n)  # parquet row order is not id order
    columns = {
        "id": pa.array(ids[rows], pa.int64()),
        "image": pa.StructArray.from_arrays(
            [pa.array([png_bytes(images[r]) for r in rows], pa.binary()), pa.nulls(n, pa.string())],
            fields=list(IMAGE_TYPE),
        ),
        "split": pa.array(np.where(is_test[rows], "test", "train"), pa.string()),
    }
    if labels_in_parquet:
        hidden = is_test[rows] if hide_test_labels else None
        columns["label"] = pa.array(labels[rows], pa.int64(), mask=hidden)
    pq.write_table(pa.table(columns), path / "data.parquet")

    def write_csv(name: str, mask: np.ndarray, with_labels: bool) -> None:
        sel = np.flatnonzero(mask)
        sel = sel[rng.permutation(sel.size)]  # CSV rows need not be sorted either
        lines = ["id,label" if with_labels else "id"]
        lines += [f"{ids[i]},{labels[i]}" if with_labels else f"{ids[i]}" for i in sel]
        (path / name).write_text("\n".join(lines) + "\n")

    write_csv("train.csv", ~is_test, labels_in_csv)
    write_csv("test.csv", is_test, labels_in_csv and not hide_test_labels)

    def sorted_split(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sel = np.flatnonzero(mask)
        sel = sel[np.argsort(ids[sel])]
        return ids[sel], images[sel], labels[sel]

    tr_ids, tr_images, tr_labels = sorted_split(~is_test)
    te_ids, te_images, te_labels = sorted_split(is_test)
    return SyntheticResplit(
        path, tr_ids, tr_images, tr_labels, te_ids, te_images, None if hide_test_labels else te_labels
    )


def _rewrite_csv(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _set_csv_label(path: Path, id_: int, value: str) -> None:
    _rewrite_csv(path, lambda lines: [f"{id_},{value}" if ln.split(",")[0] == str(id_) else ln for ln in lines])


def _parquet_labels_with(s: SyntheticResplit, id_: int, value) -> list:
    table = s.read_table()
    labels = table.column("label").to_pylist()
    labels[s.row_of(table, id_)] = value
    return labels


def _set_split(s: SyntheticResplit, id_: int, value: str) -> None:
    table = s.read_table()
    split = table.column("split").to_pylist()
    split[s.row_of(table, id_)] = value
    s.set_column("split", pa.array(split, pa.string()))


def _drop_column(s: SyntheticResplit, name: str) -> None:
    s.write_table(s.read_table().drop_columns([name]))


def _duplicate_parquet_id(s: SyntheticResplit) -> None:
    table = s.read_table()
    ids = table.column("id").to_numpy().copy()
    ids[s.row_of(table, int(s.test_ids[0]))] = s.train_ids[0]
    s.set_column("id", ids)


def _partial_train_labels(s: SyntheticResplit) -> None:
    """Labels only in the parquet, one train label null."""
    s.set_column("label", pa.array(_parquet_labels_with(s, int(s.train_ids[3]), None), pa.int64()))
    _rewrite_csv(s.train_csv, lambda lines: ["id"] + [ln.split(",")[0] for ln in lines[1:]])


def _image_path_only(s: SyntheticResplit) -> None:
    """The Hugging Face Image layout with image.path filled and image.bytes null for one row."""
    table = s.read_table()
    image = table.column("image").combine_chunks()
    blobs, paths = image.field("bytes").to_pylist(), image.field("path").to_pylist()
    row = s.row_of(table, int(s.train_ids[2]))
    blobs[row], paths[row] = None, f"images/{s.train_ids[2]}.png"
    s.set_column("image", pa.StructArray.from_arrays([pa.array(blobs, pa.binary()), pa.array(paths, pa.string())],
                                                     fields=list(IMAGE_TYPE)))


def _no_train_labels(s: SyntheticResplit) -> None:
    """Neither file labels the train rows: no label column in the parquet, only ids in train.csv."""
    _drop_column(s, "label")
    _rewrite_csv(s.train_csv, lambda lines: ["id"] + [ln.split(",")[0] for ln in lines[1:]])


def _parquet_id_null(s: SyntheticResplit) -> None:
    ids = s.read_table().column("id").to_pylist()
    ids[4] = None
    s.set_column("id", pa.array(ids, pa.int64()))


def _image_bytes_not_binary(s: SyntheticResplit) -> None:
    n = s.read_table().num_rows
    s.set_column("image", pa.StructArray.from_arrays([pa.array(range(n), pa.int64()), pa.nulls(n, pa.string())],
                                                     names=["bytes", "path"]))


# Each corruption applies one defect to a freshly written synthetic folder. The expected message fragments
# live with the tests (tests/test_data.py).
RESPLIT_CORRUPTIONS: dict[str, Callable[[SyntheticResplit], None]] = {
    "missing_parquet": lambda s: s.parquet.unlink(),
    "missing_train_csv": lambda s: s.train_csv.unlink(),
    "missing_test_csv": lambda s: s.test_csv.unlink(),
    "garbage_parquet": lambda s: s.parquet.write_bytes(b"this is not a parquet file" * 10),
    "truncated_parquet": lambda s: s.parquet.write_bytes(s.parquet.read_bytes()[: s.parquet.stat().st_size // 2]),
    "no_image_column": lambda s: _drop_column(s, "image"),
    "no_id_split_columns": lambda s: s.write_table(s.read_table().select(["image", "label"])),
    "csv_no_id_column": lambda s: _rewrite_csv(s.train_csv, lambda ls: ["idx,label"] + ls[1:]),
    "csv_two_id_columns": lambda s: _rewrite_csv(s.train_csv, lambda ls: ["id,ID"] + ls[1:]),
    "empty_csv": lambda s: s.test_csv.write_text(""),
    "csv_bad_id": lambda s: _rewrite_csv(s.train_csv, lambda ls: ls[:5] + ["abc,1"] + ls[5:]),
    "duplicate_parquet_id": _duplicate_parquet_id,
    "duplicate_csv_id": lambda s: _rewrite_csv(s.train_csv, lambda ls: ls + [ls[1]]),
    "csv_id_not_in_parquet": lambda s: _rewrite_csv(s.test_csv, lambda ls: ls + ["999999,3"]),
    # an id inside the parquet's range: a lookup that only checks the range would take its neighbour's image
    "csv_id_between_parquet_ids": lambda s: _rewrite_csv(s.test_csv, lambda ls: ls + [f"{s.unused_id_between()},3"]),
    "parquet_id_not_in_csv": lambda s: _rewrite_csv(
        s.test_csv, lambda ls: [ln for ln in ls if ln.split(",")[0] != str(s.test_ids[0])]
    ),
    "train_test_overlap": lambda s: _rewrite_csv(
        s.test_csv, lambda ls: ls + [f"{s.train_ids[0]},{s.train_labels[0]}"]
    ),
    "parquet_label_10": lambda s: s.set_column(
        "label", pa.array(_parquet_labels_with(s, int(s.train_ids[7]), 10), pa.int64())
    ),
    "parquet_label_float": lambda s: s.set_column(
        "label", pa.array([float(v) for v in _parquet_labels_with(s, int(s.train_ids[7]), 2.5)], pa.float64())
    ),
    "parquet_label_string": lambda s: s.set_column(
        "label", pa.array([str(v) for v in s.read_table()["label"].to_pylist()])
    ),
    "csv_label_negative": lambda s: _set_csv_label(s.train_csv, int(s.train_ids[9]), "-1"),
    "csv_label_10": lambda s: _set_csv_label(s.train_csv, int(s.train_ids[9]), "10"),
    "csv_label_text": lambda s: _set_csv_label(s.test_csv, int(s.test_ids[2]), "shoe"),
    "csv_label_fraction": lambda s: _set_csv_label(s.train_csv, int(s.train_ids[9]), "3.5"),
    "label_disagreement": lambda s: _set_csv_label(
        s.train_csv, int(s.train_ids[5]), str((s.train_labels[5] + 1) % 10)
    ),
    "split_disagreement": lambda s: _set_split(s, int(s.train_ids[4]), "test"),
    "bad_split_value": lambda s: _set_split(s, int(s.test_ids[1]), "validation"),
    "partial_train_labels": _partial_train_labels,
    "garbage_png": lambda s: s.replace_image(int(s.train_ids[11]), b"\x89PNG\r\n\x1a\nnot really"),
    "truncated_png": lambda s: s.replace_image(int(s.train_ids[11]), png_bytes(s.train_images[11])[:60]),
    "jpeg_image": lambda s: s.replace_image(int(s.train_ids[11]), _jpeg(s.train_images[11])),
    "wrong_size_png": lambda s: s.replace_image(int(s.test_ids[3]), png_bytes(np.zeros((28, 27), np.uint8))),
    "rgb_png": lambda s: s.replace_image(int(s.test_ids[3]), png_bytes(_tinted(s.test_images[3]))),
    "null_image": lambda s: s.replace_image(int(s.test_ids[3]), None),
    "image_path_only": _image_path_only,
    "no_train_labels": _no_train_labels,
    "parquet_id_strings": lambda s: s.set_column("id", pa.array([str(i) for i in s.read_table()["id"].to_pylist()])),
    "parquet_id_null": _parquet_id_null,
    "image_column_int": lambda s: s.set_column("image", pa.array(range(s.read_table().num_rows), pa.int64())),
    "image_bytes_not_binary": _image_bytes_not_binary,
    "csv_extra_field": lambda s: _rewrite_csv(s.train_csv, lambda ls: ls[:3] + [f"{ls[3]},7"] + ls[4:]),
}


def _tinted(array: np.ndarray) -> np.ndarray:
    """A colour image: the gray one in the red channel, less of it in green and blue."""
    return np.stack([array, array // 2, array // 3], axis=-1)


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def resplit_corruptions() -> dict[str, Callable[[SyntheticResplit], None]]:
    """The corruptions ``make_resplit(corrupt=...)`` accepts, by name."""
    return RESPLIT_CORRUPTIONS


@pytest.fixture
def make_resplit(tmp_path: Path) -> Callable[..., SyntheticResplit]:
    """Factory: ``make_resplit(name="resplit", corrupt=None, **write_synthetic_resplit options)``.

    ``corrupt`` names one entry of RESPLIT_CORRUPTIONS to apply after writing.
    """

    def make(name: str = "resplit", corrupt: str | None = None, **options) -> SyntheticResplit:
        synthetic = write_synthetic_resplit(tmp_path / name, **options)
        if corrupt is not None:
            RESPLIT_CORRUPTIONS[corrupt](synthetic)
        return synthetic

    return make


# --------------------------------------------------------------------------------------------- raw IDX


def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed when `compress`)."""
    data = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def write_idx() -> Callable[..., None]:
    """``write_idx(path, uint8_array, compress=True)``: write an IDX file."""
    return _write_idx


@dataclass
class FakeRaw:
    path: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@pytest.fixture(scope="session")
def fake_raw_dir(tmp_path_factory: pytest.TempPathFactory) -> FakeRaw:
    """120 train + 30 t10k random images as IDX files (images gzip-compressed, labels plain)."""
    path = tmp_path_factory.mktemp("fake_raw")
    rng = np.random.default_rng(123)
    raw = FakeRaw(
        path,
        rng.integers(0, 256, (120, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 120).astype(np.uint8),
        rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 30).astype(np.uint8),
    )
    _write_idx(path / "train-images-idx3-ubyte.gz", raw.train_images)
    _write_idx(path / "train-labels-idx1-ubyte", raw.train_labels, compress=False)
    _write_idx(path / "t10k-images-idx3-ubyte.gz", raw.test_images)
    _write_idx(path / "t10k-labels-idx1-ubyte", raw.test_labels, compress=False)
    return raw


@pytest.fixture(scope="session")
def real_raw_dir() -> Path:
    """The real Fashion-MNIST IDX files ($FASHION_MNIST_RAW or the Debian package); never downloads."""
    from fmnist.data.prepare import DEBIAN_RAW_DIR, RAW_ENV, _missing_raw

    candidates = [Path(os.environ[RAW_ENV])] if os.environ.get(RAW_ENV) else []
    candidates.append(DEBIAN_RAW_DIR)
    for folder in candidates:
        if not _missing_raw(folder):
            return folder
    pytest.skip(
        f"raw Fashion-MNIST IDX files not found in {', '.join(map(str, candidates))} "
        f"(apt-get install dataset-fashion-mnist, or set {RAW_ENV})"
    )


@pytest.fixture(scope="session")
def official_resplit_dir(real_raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official FashionMNIST-Resplit folder built from the real IDX files, once per session."""
    from fmnist.data.prepare import build_resplit

    return build_resplit(tmp_path_factory.mktemp("real") / "FashionMNIST-Resplit", raw_dir=real_raw_dir)


#: Test images per class in `real_resplit_dir`.
QUICK_TEST_PER_CLASS = 100


@pytest.fixture(scope="session")
def real_resplit_dir(real_raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Fashion-MNIST for the training tests, built once per session: the official 60,000 training images
    and the first `QUICK_TEST_PER_CLASS` official test images of each class (1,000). A tiny CPU run spends most
    of its time testing, and this cuts that tenfold; tests of the full official split use `official_resplit_dir`."""
    from fmnist.data.prepare import _read_raw, build_resplit

    train_x, train_y, test_x, test_y = _read_raw(real_raw_dir)
    keep = np.sort(np.concatenate([np.flatnonzero(test_y == c)[:QUICK_TEST_PER_CLASS] for c in range(10)]))
    raw = tmp_path_factory.mktemp("real_quick_raw")
    _write_idx(raw / "train-images-idx3-ubyte", train_x, compress=False)
    _write_idx(raw / "train-labels-idx1-ubyte", train_y, compress=False)
    _write_idx(raw / "t10k-images-idx3-ubyte", test_x[keep], compress=False)
    _write_idx(raw / "t10k-labels-idx1-ubyte", test_y[keep], compress=False)
    return build_resplit(tmp_path_factory.mktemp("real_quick") / "FashionMNIST-Resplit", raw_dir=raw)


# ------------------------------------------------------------------------------ analysis: a tiny real sweep
# Used by tests/test_analysis.py, tests/test_dead_neurons.py and tests/test_report.py.

TINY_SWEEP_ARGS = ("trainer.epochs=2", "data.subset=512", "model.width=4", "trainer.batch_size=32",
                   "data.val_fraction=0.05", "logger=none", "name=tiny")


@dataclass
class TinySweep:
    """A real sweep made once per session: `model.skip=true,false` × `seed=0,1` (4 completed runs, analysed
    by the opt-in hydra/callbacks=analyze into root/analysis when the sweep ends), then one diverging run
    added to the sweep dir (root/failed_lr)."""

    root: Path
    data_dir: Path
    failed_run: Path


@pytest.fixture(scope="session")
def tiny_sweep(official_resplit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TinySweep:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("tiny") / "sweep"
    common = [*TINY_SWEEP_ARGS, f"data.dir={official_resplit_dir}"]
    train = [sys.executable, str(repo / "train.py")]
    failed = root / "failed_lr"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*train, *args], capture_output=True, text=True, timeout=600)

    sweep = run("-m", "model.skip=true,false", "seed=0,1", *common, f"hydra.sweep.dir={root}",
                "hydra/callbacks=analyze", "hydra.callbacks.analyze.overrides=['figures=false','dead_neurons=false']")
    assert sweep.returncode == 0, (sweep.stdout + sweep.stderr)[-3000:]
    # then a run beside the sweep's jobs that diverges in epoch 1 (optimizer.lr=1e30): status "failed"
    diverged = run("model.skip=false", "seed=0", "optimizer.lr=1e30", *common, f"hydra.run.dir={failed}")
    assert diverged.returncode == 1, (diverged.stdout + diverged.stderr)[-3000:]
    return TinySweep(root, official_resplit_dir, failed)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file in the run dirs below `root` (not the sweep's analysis/ folder)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "analysis"}


@dataclass
class TinyAnalysis:
    """`fmnist.analysis.pipeline.analyze` of the tiny sweep (reference cell model.skip=true)."""

    sweep: TinySweep
    cfg: object             # the composed conf/analyze.yaml
    result: object          # fmnist.analysis.pipeline.AnalysisResult
    before: dict[str, tuple[int, int]]
    after: dict[str, tuple[int, int]]


def compose_analyze(*overrides: str):
    from hydra import compose, initialize_config_dir

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        return compose("analyze", overrides=list(overrides))


@pytest.fixture(scope="session")
def tiny_analysis(tiny_sweep: TinySweep, tmp_path_factory: pytest.TempPathFactory) -> TinyAnalysis:
    from fmnist.analysis.pipeline import analyze

    out = tmp_path_factory.mktemp("analysis") / "out"
    cfg = compose_analyze(f"sweep_dir={tiny_sweep.root}", f"out_dir={out}", "+reference.tiny={model.skip:true}")
    before = _snapshot(tiny_sweep.root)
    result = analyze(cfg)
    return TinyAnalysis(tiny_sweep, cfg, result, before, _snapshot(tiny_sweep.root))


@pytest.fixture(scope="session")
def analyze_config():
    """``analyze_config(*overrides)``: conf/analyze.yaml composed with the given overrides."""
    return compose_analyze


# ------------------------------------------------------------------------------ stopped or killed part-way through renames


@pytest.fixture
def stop_at_rename(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list]:
    """Patch os.replace to raise `stop` at its `n`-th call whose target `counted` accepts (every one by default);
    returns the list of the counted targets (the rename that raised included, those after it too)."""

    def patch(n: int, stop: BaseException, counted: Callable[[Path], bool] = lambda _: True) -> list:
        real, moved = os.replace, []

        def replace(src, dst) -> None:
            if counted(Path(dst)):
                moved.append(dst)
                if len(moved) == n:
                    raise stop
            real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        return moved

    return patch


@pytest.fixture
def killed_at_third_rename() -> Callable[[str, str], subprocess.CompletedProcess]:
    """Run `call` (Python source, after `imports`) in a new process that kill -9s itself at its third os.replace: a
    publish (the analysis's, the report's) killed with some files renamed and others not."""

    def run(imports: str, call: str) -> subprocess.CompletedProcess:
        script = (f"import os, signal\nfrom pathlib import Path\n{imports}\n"
                  "real, moved = os.replace, []\n"
                  "def replace(src, dst):\n"
                  "    moved.append(dst)\n"
                  "    if len(moved) == 3:\n"
                  "        os.kill(os.getpid(), signal.SIGKILL)\n"
                  "    real(src, dst)\n"
                  f"os.replace = replace\n{call}\n")
        killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1])
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        return killed

    return run
