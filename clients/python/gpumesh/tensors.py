"""Tensors on the wire: ``{"name", "dtype", "shape", "data"}`` with the values little-endian, base64.

With NumPy installed, tensors decode to ``numpy.ndarray``; without it, to :class:`Tensor`
(``dtype``, ``shape``, a flat list of values in row-major order).
"""

import ast
import base64
import os
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

DTYPES = ("float32", "int32", "bool")
_STRUCT = {"float32": "f", "int32": "i", "bool": "B"}
_NUMPY = {"float32": "<f4", "int32": "<i4", "bool": "u1"}


class Tensor(NamedTuple):
    """A decoded tensor when NumPy is not used: dtype, shape and the values, flat and row-major."""

    dtype: str
    shape: Tuple[int, ...]
    values: List[Any]


def numpy_module(use_numpy: Optional[bool] = None) -> Any:
    """NumPy when it is wanted and importable, else None (GPUMESH_NUMPY=0 turns it off)."""
    if use_numpy is False:
        return None
    if use_numpy is None and os.environ.get("GPUMESH_NUMPY") == "0":
        return None
    try:
        import numpy  # noqa: PLC0415 (NumPy is optional: imported only when used)
    except ImportError:
        if use_numpy:
            raise
        return None
    return numpy


def _count(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _flatten(value: Any) -> Tuple[List[Any], List[int]]:
    """Nested lists to (flat values, shape); every row must have the same length."""
    if not isinstance(value, (list, tuple)):
        return [value], []
    if len(value) == 0:
        return [], [0]
    parts = [_flatten(v) for v in value]
    inner = parts[0][1]
    if any(p[1] != inner for p in parts):
        raise ValueError("ragged nested list: every row must have the same shape")
    return [x for p in parts for x in p[0]], [len(value)] + inner


def tensor_bytes(name: str, value: Any, dtype: Optional[str] = None) -> Tuple[str, List[int], bytes]:
    """(dtype, shape, little-endian element bytes) of a NumPy array, a :class:`Tensor` or nested lists."""
    if isinstance(value, Tensor):
        dtype = dtype or value.dtype
        flat, shape = list(value.values), list(value.shape)
    elif hasattr(value, "__array_interface__") and hasattr(value, "dtype"):
        np = numpy_module(True)
        if dtype is None:
            kind = value.dtype.kind
            dtype = "bool" if kind == "b" else "int32" if kind in "iu" else "float32"
        array = np.ascontiguousarray(value, dtype=_NUMPY[dtype])
        return dtype, [int(d) for d in array.shape], array.tobytes()
    else:
        flat, shape = _flatten(value)
        dtype = dtype or "float32"
    if dtype not in DTYPES:
        raise ValueError(f"{name}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if len(flat) != _count(shape):
        raise ValueError(f"{name}: {len(flat)} values do not fill shape {shape}")
    if dtype == "bool":
        flat = [1 if v else 0 for v in flat]
    return dtype, shape, struct.pack(f"<{len(flat)}{_STRUCT[dtype]}", *flat)


def encode_tensor(name: str, value: Any, dtype: Optional[str] = None) -> Dict[str, Any]:
    """A wire tensor from a NumPy array, a :class:`Tensor` or nested lists (float32 unless told)."""
    dtype, shape, data = tensor_bytes(name, value, dtype)
    return {"name": name, "dtype": dtype, "shape": shape, "data": base64.b64encode(data).decode("ascii")}


def decode_tensor(wire: Dict[str, Any], use_numpy: Optional[bool] = None) -> Any:
    """The values of a wire tensor: a NumPy array (when available) or a :class:`Tensor`."""
    raw = base64.b64decode(wire["data"], validate=True)
    return _from_bytes(wire.get("name"), wire["dtype"], wire["shape"], raw, use_numpy)


_NPY_MAGIC = b"\x93NUMPY"
_NPY_DTYPES = {"<f4": "float32", "<i4": "int32", "|b1": "bool", "|u1": "bool"}
_NPY_DESCR = {"float32": "<f4", "int32": "<i4", "bool": "|b1"}
# What the coordinator takes in an upload (libs/protocol npy.ts): NumPy writes '|b1' for bool, '<b1'
# is the same byte; '|u1' is not a bool there.
_NPY_UPLOAD_DTYPES = {"<f4": "float32", "<i4": "int32", "|b1": "bool", "<b1": "bool"}
_NPY_ELEMENT_BYTES = {"float32": 4, "int32": 4, "bool": 1}
# A header longer than this is not a tensor the coordinator takes (nor one NumPy writes).
NPY_MAX_HEADER_BYTES = 64 * 1024
# The bytes before the header dict: magic, version and its length (uint16 in 1.0, uint32 after).
_NPY_PREAMBLE_V1 = 10
_NPY_PREAMBLE_V2 = 12
MAX_TENSOR_RANK = 6


class NpyHeader(NamedTuple):
    """A ``.npy`` header as the coordinator reads it; the element bytes follow at ``data_offset``."""

    dtype: str
    shape: Tuple[int, ...]
    data_offset: int
    data_length: int


def read_npy_header(prefix: bytes) -> Optional[NpyHeader]:
    """The header of a ``.npy`` file from its first bytes, or None while ``prefix`` is too short.

    Raises ValueError when the bytes cannot be a tensor the coordinator takes (as its upload check
    in libs/protocol does): not ``.npy``, a version other than 1.0-3.0, a dtype other than ``<f4``,
    ``<i4`` or ``|b1``, Fortran order, a rank over 6.
    """
    if prefix[: len(_NPY_MAGIC)] != _NPY_MAGIC[: len(prefix)]:
        raise ValueError('not a .npy file: it does not start with "\\x93NUMPY"')
    if len(prefix) < _NPY_PREAMBLE_V1:
        return None
    major, minor = prefix[6], prefix[7]
    if major not in (1, 2, 3):
        raise ValueError(f".npy version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)")
    preamble = _NPY_PREAMBLE_V1 if major == 1 else _NPY_PREAMBLE_V2
    if len(prefix) < preamble:
        return None
    header_len = struct.unpack("<H" if major == 1 else "<I", prefix[8:preamble])[0]
    if header_len > NPY_MAX_HEADER_BYTES:
        raise ValueError(f".npy header of {header_len} bytes is longer than {NPY_MAX_HEADER_BYTES}")
    data_offset = preamble + header_len
    if len(prefix) < data_offset:
        return None
    text = bytes(prefix[preamble:data_offset]).decode("utf-8" if major == 3 else "latin1", "replace")
    try:
        header = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        header = None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise ValueError(".npy header must be a dict naming 'descr', 'fortran_order' and 'shape'")
    dtype = _NPY_UPLOAD_DTYPES.get(header["descr"]) if isinstance(header["descr"], str) else None
    if dtype is None:
        raise ValueError(
            f".npy dtype {header['descr']!r} is not supported: use little-endian float32 ('<f4'), "
            "int32 ('<i4') or bool (e.g. numpy's arr.astype('<f4'))"
        )
    if header["fortran_order"] is not False:
        raise ValueError(".npy in Fortran order is not supported: save a C-ordered array (np.ascontiguousarray)")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f".npy shape {shape!r} is not a tuple of whole numbers")
    if len(shape) > MAX_TENSOR_RANK:
        raise ValueError(f".npy shape has rank {len(shape)}; at most {MAX_TENSOR_RANK} is allowed")
    return NpyHeader(dtype, shape, data_offset, _count(shape) * _NPY_ELEMENT_BYTES[dtype])


def npy_header(dtype: str, shape: Sequence[int]) -> bytes:
    """The ``.npy`` header (version 1.0, padded so the data starts on a 64-byte boundary) the
    coordinator serves a C-ordered tensor with."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (_NPY_DESCR[dtype], tuple(shape))
    text += " " * ((64 - (_NPY_PREAMBLE_V1 + len(text) + 1) % 64) % 64) + "\n"
    return _NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def decode_npy(name: str, npy: bytes, use_numpy: Optional[bool] = None) -> Any:
    """The values of a ``.npy`` file as the API serves outputs (``<f4``, ``<i4`` or ``|b1``, C order)."""
    if npy[:6] != _NPY_MAGIC or len(npy) < 10:
        raise ValueError(f"{name}: not a .npy file")
    major = npy[6]
    if major == 1:
        header_len, start = struct.unpack("<H", npy[8:10])[0], 10
    elif major in (2, 3):
        header_len, start = struct.unpack("<I", npy[8:12])[0], 12
    else:
        raise ValueError(f"{name}: .npy version {major} is not supported")
    try:
        header = ast.literal_eval(npy[start : start + header_len].decode("latin1"))
    except (ValueError, SyntaxError) as err:
        raise ValueError(f"{name}: bad .npy header: {err}") from None
    if not isinstance(header, dict) or header.get("fortran_order") is not False:
        raise ValueError(f"{name}: only C-order .npy files are read")
    dtype = _NPY_DTYPES.get(header.get("descr"))
    if dtype is None:
        raise ValueError(f"{name}: .npy dtype {header.get('descr')!r} is not float32, int32 or bool")
    return _from_bytes(name, dtype, header.get("shape", ()), npy[start + header_len :], use_numpy)


def _from_bytes(name: Any, dtype: str, shape_in: Sequence[int], raw: bytes, use_numpy: Optional[bool]) -> Any:
    """A NumPy array (when available) or a :class:`Tensor` of little-endian element bytes."""
    shape = tuple(int(d) for d in shape_in)
    if dtype not in DTYPES:
        raise ValueError(f"{name}: unknown dtype {dtype!r}")
    count = _count(shape)
    if len(raw) != count * struct.calcsize(_STRUCT[dtype]):
        raise ValueError(f"{name}: {len(raw)} bytes do not fill {dtype} shape {list(shape)}")
    np = numpy_module(use_numpy)
    if np is not None:
        array = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(shape)
        return array.astype(bool) if dtype == "bool" else array.astype(array.dtype.newbyteorder("="))
    values: List[Any] = list(struct.unpack(f"<{count}{_STRUCT[dtype]}", raw))
    if dtype == "bool":
        values = [bool(v) for v in values]
    return Tensor(dtype, shape, values)

