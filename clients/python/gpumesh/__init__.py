"""gpumesh: a Python client of the gpumesh coordinator's REST API (standard library, NumPy optional)."""

from .client import TERMINAL_STATES, Client, matmul_spec
from .errors import DownloadError, GpumeshError, JobFailedError, WaitTimeoutError
from .tensors import Tensor, decode_npy, decode_tensor, encode_tensor
from .webhooks import sign_webhook, verify_webhook

__version__ = "0.1.0"

__all__ = [
    "TERMINAL_STATES",
    "Client",
    "DownloadError",
    "GpumeshError",
    "JobFailedError",
    "Tensor",
    "WaitTimeoutError",
    "decode_npy",
    "decode_tensor",
    "encode_tensor",
    "matmul_spec",
    "sign_webhook",
    "verify_webhook",
]
