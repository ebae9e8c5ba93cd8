"""Tensors on the wire as raw little-endian bytes plus dtype and shape, in bounded chunks.

A message that carries tensors lists their ``TensorHeader``s; the bytes follow as
``TensorChunk`` messages in header order. Chunks keep every gRPC message far below its 4 MB
default whatever the model's size, and nothing is ever pickled: the receiver checks the
announced sizes (exactly, in Python integers, against a cap), fills its buffers only as the
chunks arrive, and reinterprets the bytes as the announced dtype.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from fedscale.cloud.channels import job_api_pb2 as pb

CHUNK_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 16 << 30
ALLOWED_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                            "uint8", "bool"})

NamedArrays = Sequence[tuple[str, np.ndarray]]


class WireError(ValueError):
    """A peer sent tensor data that does not match what it announced."""


def _little_endian(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


def headers(arrays: NamedArrays) -> list[pb.TensorHeader]:
    """The wire headers describing ``arrays`` (name, dtype, shape)."""
    out = []
    for name, array in arrays:
        if array.dtype.name not in ALLOWED_DTYPES:
            raise WireError(f"tensor {name!r}: dtype {array.dtype.name} cannot be sent")
        out.append(pb.TensorHeader(name=name, dtype=array.dtype.name, shape=list(array.shape)))
    return out


def chunks(arrays: NamedArrays, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pb.TensorChunk]:
    """The raw bytes of ``arrays`` as chunk messages, one tensor after another."""
    for index, (_, array) in enumerate(arrays):
        view = memoryview(_little_endian(array).reshape(-1).view(np.uint8))
        for start in range(0, len(view), chunk_bytes):
            yield pb.TensorChunk(tensor=index, data=bytes(view[start:start + chunk_bytes]))


def framed(head: Any, arrays: NamedArrays, as_message: Callable[[pb.TensorChunk], Any]) -> Iterator[Any]:
    """The stream messages of ``head`` (a ServerMessage or ExecutorMessage whose body announces
    ``arrays``) and its tensors: a payload that fits in one chunk travels inside ``head``
    (its ``chunks``), a larger one as chunk messages (``as_message``) after it, built lazily so
    the sender's writer thread, not its caller, copies a large model."""
    if sum(array.nbytes for _, array in arrays) <= CHUNK_BYTES:
        head.chunks.extend(chunks(arrays))
        yield head
        return
    yield head
    for chunk in chunks(arrays):
        yield as_message(chunk)


def nbytes(header: pb.TensorHeader) -> int:
    """The exact byte size ``header`` announces (Python integers: a huge shape cannot overflow)."""
    if header.dtype not in ALLOWED_DTYPES:
        raise WireError(f"tensor {header.name!r}: dtype {header.dtype!r} is not accepted")
    if any(d < 0 for d in header.shape):
        raise WireError(f"tensor {header.name!r}: negative dimension in {list(header.shape)}")
    return math.prod(header.shape) * np.dtype(header.dtype).itemsize


class TensorAssembler:
    """Rebuilds the tensors announced by ``tensor_headers`` from the chunks that follow them.

    Each buffer grows only by the bytes received, so announcing a size costs the receiver
    nothing until the data arrives.
    """

    def __init__(self, tensor_headers: Sequence[pb.TensorHeader]) -> None:
        self._headers = list(tensor_headers)
        self._sizes = [nbytes(h) for h in self._headers]
        if sum(self._sizes) > MAX_PAYLOAD_BYTES:
            raise WireError(f"payload of {sum(self._sizes)} bytes exceeds the {MAX_PAYLOAD_BYTES} byte cap")
        self._buffers = [bytearray() for _ in self._sizes]
        self._current = 0
        self._skip_full()

    def _skip_full(self) -> None:
        while self._current < len(self._buffers) and \
                len(self._buffers[self._current]) == self._sizes[self._current]:
            self._current += 1

    @property
    def complete(self) -> bool:
        return self._current == len(self._buffers)

    def add(self, chunk: pb.TensorChunk) -> None:
        """Append one chunk; it must continue the tensor currently being filled."""
        if self.complete:
            raise WireError("received a tensor chunk nobody announced")
        if chunk.tensor != self._current:
            raise WireError(f"chunk for tensor {chunk.tensor} while tensor {self._current} is incomplete")
        buffer = self._buffers[self._current]
        if len(buffer) + len(chunk.data) > self._sizes[self._current]:
            raise WireError(f"tensor {self._headers[self._current].name!r} received more bytes than announced")
        buffer += chunk.data
        self._skip_full()

    def arrays(self) -> dict[str, np.ndarray]:
        """The finished tensors by name (writable numpy arrays sharing the received buffers)."""
        if not self.complete:
            raise WireError("tensor payload is incomplete")
        return {h.name: np.frombuffer(buf, dtype=np.dtype(h.dtype).newbyteorder("<")).reshape(tuple(h.shape))
                for h, buf in zip(self._headers, self._buffers)}


class PayloadReader:
    """Pairs each message that announces tensors with the chunks that follow it on a stream.

    ``start`` a message with its headers, ``add`` the chunks; ``take`` returns the message and
    its tensors once complete (at once for a message without tensors), else None.
    """

    def __init__(self) -> None:
        self._message: Any = None
        self._assembler: TensorAssembler | None = None

    def start(self, message: Any, tensor_headers: Sequence[pb.TensorHeader]) -> None:
        if self._assembler is not None:
            raise WireError("a new message arrived before the previous one's tensors were complete")
        self._message, self._assembler = message, TensorAssembler(tensor_headers)

    def add(self, chunk: pb.TensorChunk) -> None:
        if self._assembler is None:
            raise WireError("tensor chunk without a header")
        self._assembler.add(chunk)

    def add_all(self, chunks: Iterable[pb.TensorChunk]) -> None:
        """Add the chunks a message carried with its body (``framed``)."""
        for chunk in chunks:
            self.add(chunk)

    def take(self) -> tuple[Any, dict[str, np.ndarray]] | None:
        if self._assembler is None or not self._assembler.complete:
            return None
        done = (self._message, self._assembler.arrays())
        self._message, self._assembler = None, None
        return done
