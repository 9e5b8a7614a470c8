"""The gpumesh REST client: submit, wait, result, and the helpers around them."""

import email.utils
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Optional

from .errors import GpumeshError, JobFailedError, WaitTimeoutError
from .sse import parse_events
from .tensors import decode_npy, decode_tensor, encode_tensor, tensor_bytes

TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED"})
USER_AGENT = "gpumesh-python/0.1.0"


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
    raw = err.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return GpumeshError(
            err.code, str(error.get("code", "HTTP_ERROR")), str(error.get("message", "")), error.get("details"), body
        )
    return GpumeshError(err.code, "HTTP_ERROR", str(body or err.reason), None, body)
