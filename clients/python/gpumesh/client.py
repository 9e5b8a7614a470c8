"""The gpumesh REST client: submit, wait, result, and the helpers around them."""

import base64
import email.utils
import hashlib
import http.client
import io
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any, Dict, Iterator, List, Optional, Set, Tuple, Union

from .errors import DownloadError, GpumeshError, JobFailedError, WaitTimeoutError
from .sse import parse_events
from .tensors import (
    NPY_MAX_HEADER_BYTES,
    NpyHeader,
    decode_npy,
    decode_tensor,
    encode_tensor,
    npy_header,
    read_npy_header,
    tensor_bytes,
)

TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED"})
USER_AGENT = "gpumesh-python/0.1.0"
NPY_MEDIA_TYPE = "application/x-npy"
# Files are read, sent, received and written this many bytes at a time (never whole).
CHUNK_BYTES = 1024 * 1024
_REF = re.compile(r"^sha256:[0-9a-f]{64}$")

PathLike = Union[str, "os.PathLike[str]"]


def matmul_spec(
    a: Any,
    b: Any,
    max_price: Any,
    redundancy: int = 1,
    deadline_seconds: int = 600,
    requirements: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The spec of a matmul job ``a @ b`` (NumPy arrays or nested lists, sent as float32).

    ``max_price`` is the most you pay per work unit (1 unit = 1 MFLOP), in base units.
    """
    return {
        "version": 1,
        "kind": "matmul",
        "inputs": [encode_tensor("a", a, "float32"), encode_tensor("b", b, "float32")],
        "requirements": requirements or {},
        "maxPricePerUnit": str(max_price),
        "redundancy": redundancy,
        "deadlineSeconds": deadline_seconds,
    }


class Client:
    """A client of one coordinator, authenticated with an API key (``Authorization: Bearer``).

    ``base_url`` is the coordinator's address (``http://127.0.0.1:8080``, with or without ``/v1``).

    A 429 (rate limited) or 503 (unavailable) answer is retried after its ``Retry-After`` (seconds
    or an HTTP date; without one 0.25 s doubling), ``max_retries`` times, each wait at most
    ``max_retry_delay`` seconds.

    ``use_numpy``: None decodes tensors to NumPy arrays when NumPy imports (and GPUMESH_NUMPY is
    not ``0``), True requires NumPy, False always returns :class:`gpumesh.Tensor`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        use_numpy: Optional[bool] = None,
        max_retries: int = 4,
        max_retry_delay: float = 30.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not api_key:
            raise ValueError("api_key is required")
        base = base_url.rstrip("/")
        # npm start prints the API as http://host:port/v1: accept that form too
        self.base_url = base[: -len("/v1")] if base.endswith("/v1") else base
        self.api_key = api_key
        self.timeout = timeout
        self.use_numpy = use_numpy
        self.max_retries = max_retries
        self.max_retry_delay = max_retry_delay

    # -- HTTP ---------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """The parsed JSON answer of a request; an error answer raises :class:`GpumeshError`."""
        response = self._open(method, path, body, headers, timeout)
        with response:
            text = response.read()
        return json.loads(text) if text else None

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        all_headers = {
            "authorization": f"Bearer {self.api_key}",
            "accept": "application/json",
            "user-agent": USER_AGENT,
        }
        data = None
        if isinstance(body, bytes):
            data = body  # sent as is, with the content-type the caller put in headers
        elif body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            all_headers["content-type"] = "application/json"
        all_headers.update(headers or {})
        attempt = 0
        while True:
            request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
            try:
                return urllib.request.urlopen(request, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as err:
                attempt += 1
                if err.code not in RETRYABLE_STATUSES or attempt > self.max_retries:
                    raise _api_error(err) from None
                wait = retry_after_seconds(err.headers.get("Retry-After"))
                if wait is None:
                    wait = BASE_BACKOFF_SECONDS * 2 ** (attempt - 1)
                err.close()
                time.sleep(min(wait, self.max_retry_delay))

    # -- jobs ---------------------------------------------------------------------------------

    def submit(self, spec: Dict[str, Any], idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Submits a job spec (``POST /v1/jobs``); the job as created (state QUEUED).

        With ``idempotency_key``, a retried submission returns the first job instead of a second.
        """
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        return self._request("POST", "/v1/jobs", spec, headers)

    def dry_run(self, spec: Dict[str, Any]) -> Dict[str, Any]:
        """What a submission would cost and whether it would be placed now (``placeable``, ``reasons``)."""
        return self._request("POST", "/v1/jobs/dry-run", spec)

    def job(self, job_id: str) -> Dict[str, Any]:
        """The job's current state (``GET /v1/jobs/:id``)."""
        return self._request("GET", f"/v1/jobs/{_quote(job_id)}")

    def cancel(self, job_id: str) -> Dict[str, Any]:
        """Cancels a job that has not finished; its reservation returns to the balance."""
        return self._request("POST", f"/v1/jobs/{_quote(job_id)}/cancel")

    def events(
        self, job_id: str, last_event_id: Optional[str] = None, timeout: Optional[float] = None
    ) -> Iterator[Dict[str, Any]]:
        """The job's events (``GET /v1/jobs/:id/events``) until the stream ends.

        Each event is a dict (``id``, ``type``, ``fromState``, ``toState``, ``data``, ``createdAt``).
        With ``last_event_id`` only later events come (resume). ``timeout`` bounds each read (the
        server sends a heartbeat every 15 s): a silent connection raises ``socket.timeout``.
        """
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        response = self._open("GET", f"/v1/jobs/{_quote(job_id)}/events", None, headers, timeout)
        with response:
            if response.status == 204:
                return
            for message in parse_events(response):
                if message.event == "job-event":
                    yield json.loads(message.data)

    def wait(
        self,
        job_id: str,
        timeout: float = 600.0,
        stream: bool = True,
        poll_interval: float = 0.5,
    ) -> Dict[str, Any]:
        """Waits until the job is COMPLETED, FAILED, CANCELLED or EXPIRED and returns it.

        Reads the event stream, resuming with Last-Event-ID when a connection drops (``stream``),
        or polls ``GET /v1/jobs/:id`` every ``poll_interval`` seconds. A FAILED or EXPIRED job is
        returned with ``error: {code, message}``; raises :class:`WaitTimeoutError` after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        job = self.job(job_id)
        last_event_id: Optional[str] = None
        while job["state"] not in TERMINAL_STATES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(job_id, timeout, job)
            if stream:
                try:
                    for event in self.events(job_id, last_event_id, timeout=min(remaining, 30.0)):
                        last_event_id = event["id"]
                        if event.get("toState") in TERMINAL_STATES or time.monotonic() > deadline:
                            break
                except (socket.timeout, TimeoutError, ConnectionError, urllib.error.URLError):
                    pass  # a dropped or silent stream: resume from the last event received
            else:
                time.sleep(min(poll_interval, remaining))
            job = self.job(job_id)
        return job

    def result(self, job_id: str) -> Dict[str, Any]:
        """The outputs of a completed job by name: NumPy arrays, or :class:`gpumesh.Tensor` without NumPy.

        A job that has not completed raises :class:`GpumeshError` ``RESULT_NOT_READY`` (409).
        """
        body = self._request("GET", f"/v1/jobs/{_quote(job_id)}/result")
        outputs: List[Dict[str, Any]] = body["result"]["outputs"]
        # large outputs come by ref (no "data"): their .npy is downloaded
        return {
            t["name"]: self.output(job_id, t["name"]) if "ref" in t else decode_tensor(t, self.use_numpy)
            for t in outputs
        }

    def output(self, job_id: str, name: str) -> Any:
        """One output of a completed job (``GET /v1/jobs/{id}/outputs/{name}``, as ``.npy``), decoded."""
        response = self._open(
            "GET",
            f"/v1/jobs/{_quote(job_id)}/outputs/{_quote(name)}",
            headers={"accept": "application/x-npy"},
        )
        with response:
            return decode_npy(name, response.read(), self.use_numpy)

    def save_output(self, job_id: str, name: str, path: PathLike) -> Dict[str, Any]:
        """Writes output ``name`` of a completed job to ``path`` as ``.npy``, never holding it whole.

        An output by ref (a large one) is streamed from ``GET /v1/jobs/{id}/outputs/{name}`` to a
        temporary file beside ``path`` and renamed over it only when its element bytes hash to the
        ref the job's result names: otherwise :class:`gpumesh.DownloadError`, nothing is written and
        a file already at ``path`` is kept. An inline output is written the same way from the result.
        Answers ``path``, ``ref`` (``sha256:`` of the element bytes), ``dtype``, ``shape`` and
        ``bytes`` (the file's length).
        """
        body = self._request("GET", f"/v1/jobs/{_quote(job_id)}/result")
        outputs: List[Dict[str, Any]] = body["result"]["outputs"]
        output = next((t for t in outputs if t["name"] == name), None)
        if output is None:
            names = ", ".join(t["name"] for t in outputs) or "none"
            raise ValueError(f"job {job_id} has no output {name!r} (outputs: {names})")
        if "ref" in output:
            response = self._open(
                "GET",
                f"/v1/jobs/{_quote(job_id)}/outputs/{_quote(name)}",
                headers={"accept": NPY_MEDIA_TYPE},
            )
            with response:
                return _save_npy(response, path, output["ref"])
        data = base64.b64decode(output["data"], validate=True)
        npy = io.BytesIO(npy_header(output["dtype"], output["shape"]) + data)
        return _save_npy(npy, path, None)

    def upload_tensor(self, value: Any, dtype: Optional[str] = None) -> Dict[str, Any]:
        """Uploads a tensor (``POST /v1/tensors``) to use as a job input by ref: ``{"name": ..., "ref": ...}``.

        ``value``: a NumPy array, a :class:`gpumesh.Tensor` or nested lists (float32 unless told).
        Answers ``ref``, ``dtype``, ``shape`` and ``bytes``; the same bytes again give the same ref.
        """
        dtype, shape, data = tensor_bytes("upload", value, dtype)
        query = urllib.parse.urlencode({"dtype": dtype, "shape": ",".join(str(d) for d in shape)})
        return self._request(
            "POST", f"/v1/tensors?{query}", data, {"content-type": "application/octet-stream"}
        )

    def upload_npy_file(self, path: PathLike) -> Dict[str, Any]:
        """Uploads a ``.npy`` file (``POST /v1/tensors``, ``application/x-npy``), streamed from disk.

        The header and length are checked first, so a wrong file raises ValueError naming it before
        any byte is sent: not a ``.npy``, truncated, longer or shorter than its shape, a dtype other
        than float32 (``<f4``), int32 (``<i4``) or bool, Fortran order. A 429 or 503 is retried
        after ``Retry-After`` like every request, sending the file again from its start. Answers
        ``ref``, ``dtype``, ``shape``, ``bytes`` and ``expiresAt``, as :meth:`upload_tensor` does.
        """
        path = os.fspath(path)
        checked = check_npy_file(path)
        size = checked.data_offset + checked.data_length
        attempt = 0
        while True:
            status, reason, headers, raw = self._post_file("/v1/tensors", path, size)
            attempt += 1
            if status in RETRYABLE_STATUSES and attempt <= self.max_retries:
                wait = retry_after_seconds(headers.get("Retry-After"))
                if wait is None:
                    wait = BASE_BACKOFF_SECONDS * 2 ** (attempt - 1)
                time.sleep(min(wait, self.max_retry_delay))
                continue
            if status >= 400:
                raise _error_answer(status, reason, raw)
            return json.loads(raw)

    def _post_file(self, path: str, file_path: str, size: int) -> Tuple[int, str, Any, bytes]:
        """(status, reason, headers, body) of a POST of ``size`` bytes of a .npy file, sent as read.

        http.client rather than urllib: it sends a megabyte per write (urllib's 8 KiB) and still reads
        the answer when the coordinator refuses the upload (401, 413) before taking the whole body.
        """
        url = urllib.parse.urlsplit(self.base_url + path)
        connection, target, proxy_headers = _file_connection(url, self.timeout)
        try:
            connection.putrequest("POST", target, skip_accept_encoding=True)
            for key, value in (
                ("authorization", f"Bearer {self.api_key}"),
                ("accept", "application/json"),
                ("user-agent", USER_AGENT),
                ("content-type", NPY_MEDIA_TYPE),
                ("content-length", str(size)),
                *proxy_headers.items(),
            ):
                connection.putheader(key, value)
            connection.endheaders()
            try:
                _send_file(connection, file_path, size)
            except (BrokenPipeError, ConnectionResetError) as sending:
                # the coordinator answered before reading the rest and closed: its answer says why
                try:
                    response = connection.getresponse()
                except (OSError, http.client.HTTPException):
                    raise sending from None
            else:
                response = connection.getresponse()
            return response.status, response.reason, response.headers, response.read()
        finally:
            connection.close()

    def tensors(self, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """One page of the account's tensors, newest first (``GET /v1/tensors``).

        Answers ``items`` (each ``ref``, ``dtype``, ``shape``, ``bytes``, ``createdAt``, ``expiresAt``,
        ``jobId`` for a job's output) and ``nextCursor`` (None on the last page).
        """
        query = {k: v for k, v in (("limit", limit), ("cursor", cursor)) if v is not None}
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        return self._request("GET", "/v1/tensors" + suffix)

    def delete_tensor(self, ref: str) -> Dict[str, Any]:
        """Deletes one of the account's tensors (``DELETE /v1/tensors/{ref}``).

        ``TENSOR_IN_USE`` (409, ``details.jobIds``) while an unfinished job uses it as an input;
        ``TENSOR_NOT_FOUND`` (404) for a ref the account does not hold.
        """
        return self._request("DELETE", f"/v1/tensors/{_quote(ref)}")

    def save_tensor(self, ref: str, path: PathLike) -> Dict[str, Any]:
        """Writes one of the account's tensors (``GET /v1/tensors/{ref}``) to ``path`` as ``.npy``.

        Streamed to a temporary file beside ``path``, and renamed over it only when its element bytes
        hash to ``ref``: otherwise :class:`gpumesh.DownloadError`, nothing is written and a file
        already at ``path`` is kept. Answers ``path``, ``ref``, ``dtype``, ``shape`` and ``bytes``.
        """
        if not _REF.match(ref):
            raise ValueError(f"{ref!r} is not a ref (sha256: and 64 hex digits)")
        response = self._open("GET", f"/v1/tensors/{_quote(ref)}", headers={"accept": NPY_MEDIA_TYPE})
        with response:
            return _save_npy(response, path, ref)

    def run(self, spec: Dict[str, Any], timeout: float = 600.0) -> Dict[str, Any]:
        """Submits, waits and returns the outputs; a job that ends without them raises :class:`JobFailedError`."""
        job = self.wait(self.submit(spec)["id"], timeout)
        if job["state"] != "COMPLETED":
            raise JobFailedError(job)
        return self.result(job["id"])

    def matmul(
        self,
        a: Any,
        b: Any,
        max_price: Any,
        timeout: float = 600.0,
        **spec_options: Any,
    ) -> Any:
        """``a @ b`` computed on the network (float32): submits the job, waits, returns the product."""
        return self.run(matmul_spec(a, b, max_price, **spec_options), timeout)["c"]

    # -- account ------------------------------------------------------------------------------

    def account(self) -> Dict[str, Any]:
        """The account of the key: ``balance`` and ``reserved`` (base units, as strings), role, address."""
        return self._request("GET", "/v1/account")

    def ledger(self, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """One page of the account's ledger history (``GET /v1/account/ledger``)."""
        query = {k: v for k, v in (("limit", limit), ("cursor", cursor)) if v is not None}
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        return self._request("GET", "/v1/account/ledger" + suffix)


    # -- webhooks -----------------------------------------------------------------------------

    def set_webhook(self, url: str, events: Optional[List[str]] = None) -> Dict[str, Any]:
        """Sets the account's webhook; the answer's ``secret`` (shown only here) signs deliveries."""
        body: Dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = events
        return self._request("PUT", "/v1/account/webhook", body)

    def webhook(self) -> Dict[str, Any]:
        """The account's webhook (``WEBHOOK_NOT_FOUND`` when none is set)."""
        return self._request("GET", "/v1/account/webhook")

    def test_webhook(self) -> Dict[str, Any]:
        """Sends a signed ping to the webhook now: ``delivered``, the receiver's ``status``, ``error``."""
        return self._request("POST", "/v1/account/webhook/test")

    def delete_webhook(self) -> None:
        """Removes the account's webhook."""
        self._request("DELETE", "/v1/account/webhook")

RETRYABLE_STATUSES = (429, 503)
BASE_BACKOFF_SECONDS = 0.25


def retry_after_seconds(header: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """How long ``Retry-After`` asks to wait (seconds or an HTTP date), or None when unreadable."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _quote(segment: str) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _api_error(err: urllib.error.HTTPError) -> GpumeshError:
    """The error envelope of an HTTP error answer (or what there is of it)."""
    return _error_answer(err.code, str(err.reason), err.read())


def _error_answer(status: int, reason: str, raw: bytes) -> GpumeshError:
    """The error envelope of an error answer's body (or what there is of it)."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return GpumeshError(
            status, str(error.get("code", "HTTP_ERROR")), str(error.get("message", "")), error.get("details"), body
        )
    return GpumeshError(status, "HTTP_ERROR", str(body or reason), None, body)


# .npy files on disk ------------------------------------------------------------------------------


def check_npy_file(path: str) -> NpyHeader:
    """The header of a ``.npy`` file to upload, once it and the file's length agree (what the
    coordinator takes); ValueError naming the file otherwise."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(NPY_MAX_HEADER_BYTES + 12)  # the longest header and its preamble
    except OSError as err:
        raise ValueError(f"cannot read {path} ({err.strerror or err})") from None
    try:
        header = read_npy_header(head)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if header is None:
        raise ValueError(f"{path}: .npy file is truncated inside its header")
    expected = header.data_offset + header.data_length
    if size != expected:
        shape = ",".join(str(d) for d in header.shape)
        raise ValueError(
            f"{path}: its header announces {header.dtype}[{shape}] ({expected} bytes with the header) "
            f"but the file has {size}"
        )
    return header


def _file_connection(
    url: urllib.parse.SplitResult, timeout: float
) -> Tuple[http.client.HTTPConnection, str, Dict[str, str]]:
    """A connection for a streamed file upload to ``url``, the request target to send on it and the
    headers the proxy needs: through the proxy urllib would use for the other requests
    (``http_proxy``/``https_proxy``, ``no_proxy``), directly otherwise. http:// goes to the proxy in
    absolute form; https:// through a CONNECT tunnel, so the proxy never sees the API key."""
    host = url.hostname or ""
    default_port = 443 if url.scheme == "https" else 80
    origin_target = url.path + (f"?{url.query}" if url.query else "")
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        connection_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        return connection_type(host, url.port, timeout=timeout, blocksize=CHUNK_BYTES), origin_target, {}
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parsed.scheme != "http":
        raise ValueError(f"{url.scheme}_proxy {proxy!r}: only an http:// proxy is supported for file uploads")
    auth: Dict[str, str] = {}
    if parsed.username is not None:
        credentials = f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
        auth["proxy-authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    proxy_host, proxy_port = parsed.hostname or "", parsed.port or 80
    if url.scheme == "https":
        tunnel = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout, blocksize=CHUNK_BYTES)
        tunnel.set_tunnel(host, url.port or default_port, headers=auth)
        return tunnel, origin_target, {}
    connection = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout, blocksize=CHUNK_BYTES)
    return connection, f"http://{url.netloc.rpartition('@')[2]}{origin_target}", auth


def _send_file(connection: http.client.HTTPConnection, path: str, size: int) -> None:
    """Sends the first ``size`` bytes of a file, a chunk at a time; a file changed since it was
    checked (shorter now) fails rather than sending less than the content-length announced."""
    with open(path, "rb") as file:
        remaining = size
        while remaining > 0:
            chunk = file.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                raise ValueError(f"{path}: the file became shorter while it was being uploaded")
            connection.send(chunk)
            remaining -= len(chunk)


# The temporary files this process is writing: a second save to the same path in this process fails
# rather than write into the first one's file.
_SAVING: Set[str] = set()
_SAVING_LOCK = threading.Lock()


def _save_npy(body: IO[bytes], path: PathLike, ref: Optional[str]) -> Dict[str, Any]:
    """Writes a ``.npy`` body to ``path`` as it is read: to ``.<name>.<pid>.part`` beside it, flushed
    to disk, then renamed over ``path`` once it is whole and (with ``ref``) its element bytes hash to
    ``ref``. Whatever fails, the temporary file is removed and ``path`` is left as it was."""
    target = os.fspath(path)
    folder, name = os.path.split(target)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.part")
    with _SAVING_LOCK:
        if temporary in _SAVING:
            raise RuntimeError(f"{target} is already being written by this process")
        _SAVING.add(temporary)
    try:
        # "wb", not "xb": the name holds this process's id, so one left there is from a process
        # that died (a reused id) and this one is the only writer (checked above)
        with open(temporary, "wb") as file:
            header, received, sha256 = _copy_hashing(body, file, target)
            if header is None:
                raise DownloadError(target, f"the download ended inside the .npy header ({received} bytes)")
            expected = header.data_offset + header.data_length
            if received != expected:
                raise DownloadError(target, f"the download has {received} bytes; its header announces {expected}")
            got = "sha256:" + sha256
            if ref is not None and got != ref:
                raise DownloadError(
                    target, f"the bytes received hash to {got}, not {ref}: {target} not written", ref, got
                )
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
        return {"path": target, "ref": got, "dtype": header.dtype, "shape": list(header.shape), "bytes": received}
    except BaseException:
        try:
            os.remove(temporary)
        except FileNotFoundError:
            pass
        raise
    finally:
        with _SAVING_LOCK:
            _SAVING.discard(temporary)


def _copy_hashing(body: IO[bytes], file: IO[bytes], target: str) -> Tuple[Optional[NpyHeader], int, str]:
    """Copies ``body`` to ``file`` a chunk at a time, hashing what follows the .npy header:
    (the header or None, bytes copied, sha256 hex of the element bytes)."""
    sha256 = hashlib.sha256()
    head = b""
    header: Optional[NpyHeader] = None
    received = 0
    ended = False
    while not ended:
        try:
            chunk = body.read(CHUNK_BYTES)
        except http.client.IncompleteRead as err:
            # the connection closed early: what came is kept, the length check says how much is missing
            chunk, ended = err.partial, True
        if not chunk:
            break
        received += len(chunk)
        if header is None:
            head += chunk
            try:
                header = read_npy_header(head)
            except ValueError as err:
                raise DownloadError(target, f"the download is not a .npy file: {err}") from None
            if header is not None:
                sha256.update(head[header.data_offset :])
                head = b""
        else:
            sha256.update(chunk)
        if header is not None and received > header.data_offset + header.data_length:
            # stop there rather than write whatever else comes
            expected = header.data_offset + header.data_length
            raise DownloadError(target, f"the download runs past the {expected} bytes its header announces")
        file.write(chunk)
    return header, received, sha256.hexdigest()
