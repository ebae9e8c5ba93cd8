"""CIFAR-10 read from the folder FedScale reads it from, without running anything in its pickles,
plus a synthetic stand-in in that layout.

FedScale's ``cifar10`` (SymbioticLab/FedScale: fedscale/cloud/fllibs.py) is torchvision's
``datasets.CIFAR10(data_dir)``, which reads ``<data_dir>/cifar-10-batches-py/``: the Python 2
pickles ``data_batch_1`` .. ``data_batch_5`` (training) and ``test_batch``, each a dict whose
``data`` is a uint8 numpy array of N x 3072 pixels (1024 red, then green, then blue, rows of
32) and ``labels`` a list of N class indices. The binary version,
``<data_dir>/cifar-10-batches-bin/`` with ``data_batch_N.bin`` and ``test_batch.bin`` of
3073-byte records (a label byte, then the same 3072 pixels), is read if the pickle folder is
absent; it needs no unpickling at all.

Reading the pickles safely. ``pickle.load`` would call whatever the file names, so it is never
used. A batch is first scanned with ``pickletools.genops``, which decodes opcodes without
executing them: any opcode outside the plain data ones a batch uses (containers, strings,
numbers, memo, GLOBAL/REDUCE/BUILD) is refused, and so is a memo index past ``_MAX_MEMO``, which
would make the C unpickler allocate memory for it. It is then unpickled by an Unpickler whose
``find_class`` answers only the three numpy names an array's pickle holds
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``), and answers each
with an inert recorder defined here, not with numpy's: REDUCE and BUILD then call only those
recorders, which keep their arguments. Every other global is refused before it is looked up, so
no code from the file or from any importable module runs. The recorded array is accepted only as
exactly uint8 N x 3072 with N x 3072 bytes of data, and becomes an array with
``numpy.frombuffer``. Files above ``_MAX_BATCH_BYTES`` are refused unread.

Samples are 3 x 32 x 32, normalised per channel like FedScale's Open Images (see ``images``);
pixels stay uint8 in memory (150 MB for the training set) and are normalised a batch at a time.
FedScale's random crops and flips are left out, so training is deterministic. FedScale
partitions CIFAR-10 over clients itself (it ships no client mapping), so the job's
``partition`` and ``num_clients`` keys (or a ``data_map_file`` of sample indices) split it.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import struct
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedscale.dataloaders.dataset import ArrayDataset, DataError, LazySamples
from fedscale.dataloaders.images import RGB_MEAN, RGB_STD, normalise, striped_class_images

PICKLE_FOLDER = "cifar-10-batches-py"
BINARY_FOLDER = "cifar-10-batches-bin"
BATCHES = (*(f"data_batch_{n}" for n in range(1, 6)), "test_batch")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)
PIXELS = 3 * 32 * 32
_MAX_BATCH_BYTES = 64 << 20
_MAX_MEMO = 1 << 20
_SAFE_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
    "EMPTY_DICT", "DICT", "EMPTY_LIST", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "APPEND", "APPENDS", "SETITEM", "SETITEMS",
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
    "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD",
})
_MEMO_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})


def load_cifar10(data_dir: str | PathLike[str]) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test) from ``data_dir``'s CIFAR-10 folder: the five training batches in order, and
    the test batch. Any problem raises a one-line DataError naming the file."""
    files = cifar10_files(data_dir)
    read = _read_pickle_batch if files[0].parent.name == PICKLE_FOLDER else _read_binary_batch
    pixels, labels = zip(*(read(path) for path in files))
    return (_dataset(np.concatenate(pixels[:-1]), np.concatenate(labels[:-1])),
            _dataset(pixels[-1].copy(), labels[-1]))


def cifar10_files(data_dir: str | PathLike[str]) -> list[Path]:
    """The six batch files, training ones first: ``cifar-10-batches-py``'s if that folder exists,
    else ``cifar-10-batches-bin``'s; a one-line DataError naming the first one missing."""
    root = Path(data_dir)
    folder, suffix = (root / PICKLE_FOLDER, "") if (root / PICKLE_FOLDER).is_dir() else (root / BINARY_FOLDER, ".bin")
    if not folder.is_dir():
        raise DataError.at(root, f"a CIFAR-10 folder holding {PICKLE_FOLDER}/ or {BINARY_FOLDER}/")
    files = [folder / f"{name}{suffix}" for name in BATCHES]
    missing = next((path for path in files if not path.is_file()), None)
    if missing is not None:
        raise DataError.at(missing, f"a CIFAR-10 batch file ({', '.join(path.name for path in files)} in {folder})")
    return files


def _dataset(pixels: np.ndarray, labels: np.ndarray) -> ArrayDataset:
    images = torch.from_numpy(pixels.reshape(-1, *IMAGE_SHAPE))

    def load(positions: np.ndarray) -> torch.Tensor:
        return normalise(images[torch.from_numpy(positions)], RGB_MEAN, RGB_STD)

    return ArrayDataset(LazySamples(load, IMAGE_SHAPE, np.arange(len(labels))),
                        torch.from_numpy(labels.astype(np.int64)), len(CLASSES))


def _checked_size(path: Path) -> int:
    size = path.stat().st_size
    if size > _MAX_BATCH_BYTES:
        raise DataError.at(path, f"a CIFAR-10 batch of at most {_MAX_BATCH_BYTES >> 20} MiB, got {size} bytes")
    return size


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N x 3072 uint8 pixels, N uint8 labels) from records of a label byte and 3072 pixel bytes."""
    size = _checked_size(path)
    if size == 0 or size % (PIXELS + 1):
        raise DataError.at(path, f"whole {PIXELS + 1}-byte records (a label byte, {PIXELS} pixel bytes), got {size} "
                                 "bytes")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, PIXELS + 1)
    return records[:, 1:], _checked_labels(path, records[:, 0])


def _checked_labels(path: Path, labels: np.ndarray) -> np.ndarray:
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))
    if bad.size:
        raise DataError.at(path, f"labels below {len(CLASSES)}, got {labels[bad[0]]} for image {bad[0]}")
    return labels


_NDARRAY = object()  # what numpy.ndarray resolves to: an inert token with no attributes to set


class _Recorder:
    """Stands in for a numpy callable a pickle names: keeps the arguments REDUCE calls it with and
    the state BUILD hands it, and does nothing else."""

    def __init__(self, *args: Any) -> None:
        self.args, self.state = args, None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ArrayRecord(_Recorder):
    """Stands in for ``numpy.core.multiarray._reconstruct(ndarray, shape, typecode)``."""


class _DtypeRecord(_Recorder):
    """Stands in for ``numpy.dtype(name, align, copy)``."""


_RECORDERS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _ArrayRecord,
    ("numpy._core.multiarray", "_reconstruct"): _ArrayRecord,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeRecord,
}


class _RecordingUnpickler(pickle.Unpickler):
    """Resolves the numpy names of an array's pickle to the recorders above and refuses every other."""

    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _RECORDERS:
            return _RECORDERS[(module, name)]
        raise DataError.at(self.path, f"only numpy arrays and plain values in a CIFAR-10 batch pickle; refused the "
                                      f"global {module}.{name}, which was not run")


def _read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N x 3072 uint8 pixels, N labels) from a torchvision CIFAR-10 batch pickle, read as the
    module's docstring says."""
    _checked_size(path)
    data = path.read_bytes()
    try:
        _scan_opcodes(data, path)
        batch = _RecordingUnpickler(data, path).load()
    except DataError:
        raise
    except Exception as error:
        raise DataError.at(path, f"a CIFAR-10 batch pickle ({type(error).__name__}: {error})") from None
    if not isinstance(batch, dict):
        raise DataError.at(path, f"a CIFAR-10 batch pickle holding a dict, got {type(batch).__name__}")
    fields = {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if not {"data", "labels"} <= fields.keys():
        raise DataError.at(path, "a CIFAR-10 batch dict with 'data' and 'labels'")
    pixels = _pixels(path, fields["data"])
    labels = np.array(fields["labels"] if isinstance(fields["labels"], list) else None)
    if labels.shape != (len(pixels),) or labels.dtype.kind not in "iu":
        raise DataError.at(path, f"'labels' a list of {len(pixels)} integers, one per image")
    return pixels, _checked_labels(path, labels)


def _scan_opcodes(data: bytes, path: Path) -> None:
    for opcode, argument, position in pickletools.genops(data):
        if opcode.name not in _SAFE_OPCODES:
            raise DataError.at(path, f"only plain-data pickle opcodes in a CIFAR-10 batch, got {opcode.name} at byte "
                                     f"{position}")
        if opcode.name in _MEMO_OPCODES and not 0 <= argument < _MAX_MEMO:
            raise DataError.at(path, f"pickle memo indices below {_MAX_MEMO}, got {argument} at byte {position}")


def _pixels(path: Path, record: Any) -> np.ndarray:
    """The recorded array as N x 3072 uint8, if that is exactly what it is."""
    expected = f"'data' a uint8 numpy array of N x {PIXELS} pixels"
    if not (isinstance(record, _ArrayRecord) and record.args[:1] == (_NDARRAY,)
            and isinstance(record.state, tuple) and len(record.state) == 5):
        raise DataError.at(path, expected)
    _, shape, dtype, fortran, raw = record.state
    if not (isinstance(dtype, _DtypeRecord) and dtype.args[:1] in ((b"u1",), ("u1",)) and fortran in (False, 0)
            and isinstance(shape, tuple) and len(shape) == 2 and shape[1] == PIXELS and type(shape[0]) is int
            and isinstance(raw, bytes) and len(raw) == shape[0] * PIXELS):
        raise DataError.at(path, expected)
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def write_cifar10_fixture(root: str | PathLike[str], images_per_batch: int, seed: int,
                          folders: Sequence[str] = (PICKLE_FOLDER, BINARY_FOLDER)) -> str:
    """Write a small synthetic CIFAR-10 under ``root`` in each of ``folders`` (both layouts by
    default, holding the same images); return ``root``.

    It stands in for the real download in tests and demos. Each of the six batches holds
    ``images_per_batch`` 32 x 32 images of the 10 classes, drawn by
    ``images.striped_class_images``. The pickles are written opcode by opcode as Python 2's
    cPickle wrote torchvision's (protocol 2, byte strings, numpy's ``_reconstruct``), with
    ``batches.meta``; the binary batches as CIFAR-10's site ships them, with
    ``batches.meta.txt``. Deterministic in ``seed``.
    """
    if images_per_batch < 1:
        raise ValueError(f"need images_per_batch >= 1, got {images_per_batch}")
    rng = np.random.default_rng(seed)
    draw = striped_class_images(len(CLASSES), rng)
    base = Path(root)
    for folder in folders:
        (base / folder).mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(BATCHES):
        labels = rng.integers(0, len(CLASSES), size=images_per_batch)
        images = np.stack([draw(label, 32, 32) for label in labels])
        pixels = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(labels), PIXELS)
        if PICKLE_FOLDER in folders:
            label = f"training batch {index + 1} of 5" if name != "test_batch" else "testing batch 1 of 1"
            batch = {"batch_label": label, "labels": labels.tolist(), "data": pixels,
                     "filenames": [f"{CLASSES[c]}_s_{index:02d}{k:04d}.png" for k, c in enumerate(labels)]}
            (base / PICKLE_FOLDER / name).write_bytes(_python2_pickle(batch))
        if BINARY_FOLDER in folders:
            records = np.concatenate([labels.astype(np.uint8)[:, None], pixels], axis=1)
            (base / BINARY_FOLDER / f"{name}.bin").write_bytes(records.tobytes())
    if PICKLE_FOLDER in folders:
        meta = {"num_cases_per_batch": images_per_batch, "label_names": list(CLASSES), "num_vis": PIXELS}
        (base / PICKLE_FOLDER / "batches.meta").write_bytes(_python2_pickle(meta))
    if BINARY_FOLDER in folders:
        (base / BINARY_FOLDER / "batches.meta.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    return str(base)


def _python2_pickle(value: Any) -> bytes:
    """``value`` (dicts, lists, str, int, a 2-D uint8 array) pickled as Python 2's cPickle, protocol 2."""
    return b"\x80\x02" + _python2_opcodes(value) + b"."


def _python2_opcodes(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode("latin-1")
        return (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<i", len(raw))) + raw
    if isinstance(value, int):
        if 0 <= value < 1 << 16:
            return b"K" + bytes([value]) if value < 256 else b"M" + struct.pack("<H", value)
        return b"J" + struct.pack("<i", value)
    if isinstance(value, list):
        return b"]" + (b"(" + b"".join(map(_python2_opcodes, value)) + b"e" if value else b"")
    if isinstance(value, dict):
        items = b"".join(_python2_opcodes(key) + _python2_opcodes(item) for key, item in value.items())
        return b"}" + (b"(" + items + b"u" if value else b"")
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 2:
        raw = value.tobytes()
        dtype = b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01"
                + _python2_opcodes(value.shape[0]) + _python2_opcodes(value.shape[1]) + b"\x86" + dtype
                + b"\x89T" + struct.pack("<i", len(raw)) + raw + b"tb")
    raise TypeError(f"cannot write {type(value).__name__} as a Python 2 pickle here")
