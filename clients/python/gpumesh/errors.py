"""Exceptions raised by the gpumesh client."""

from typing import Any, Dict, List, Optional


class GpumeshError(Exception):
    """An error answer of the coordinator: its HTTP status and its error envelope.

    The API answers every error as ``{"statusCode", "error": {"code", "message", "details"}}``;
    ``code`` is a stable string (``VALIDATION_FAILED``, ``INSUFFICIENT_BALANCE``, ``JOB_NOT_FOUND``,
    ...), ``message`` names the field when a field is wrong, ``details`` holds the specifics.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[Dict[str, Any]] = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.body = body

    @property
    def fields(self) -> List[str]:
        """The fields a validation error names (``inputs[0].shape``): ``details.errors`` entries
        (``{"path", "message"}`` objects or ``"field: message"`` strings), else the message."""
        entries = self.details.get("errors")
        names: List[str] = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                names.append(entry["path"])
            elif isinstance(entry, str) and ": " in entry:
                names.append(entry.split(": ", 1)[0])
        if not names and ": " in self.message:
            names.append(self.message.split(": ", 1)[0])
        return names

    @property
    def field(self) -> Optional[str]:
        """The first field the error names, or None."""
        names = self.fields
        return names[0] if names else None


class JobFailedError(Exception):
    """A job ended without a result (FAILED, EXPIRED or CANCELLED); ``job["error"]`` says why."""

    def __init__(self, job: Dict[str, Any]) -> None:
        error = job.get("error") or {}
        self.job = job
        self.state = job.get("state")
        self.code = error.get("code", job.get("state"))
        self.message = error.get("message", f"the job ended {job.get('state')}")
        super().__init__(f"job {job.get('id')} {self.state}: {self.code}: {self.message}")


class WaitTimeoutError(TimeoutError):
    """The job did not reach a terminal state within the timeout; ``job`` is its last known state."""

    def __init__(self, job_id: str, timeout: float, job: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(f"job {job_id} did not finish within {timeout} s")
        self.job_id = job_id
        self.job = job


class DownloadError(ValueError):
    """A ``.npy`` download that is not what was asked for, so nothing was written at ``path``.

    The body was not a ``.npy`` file, ended early or ran long, or (``expected_ref`` set) its element
    bytes hash to ``received_ref`` instead: a tensor's ref is the sha256 of its element bytes, so
    bytes that differ are never written where the caller asked, and a file already there is kept.
    """

    def __init__(
        self,
        path: str,
        message: str,
        expected_ref: Optional[str] = None,
        received_ref: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.expected_ref = expected_ref
        self.received_ref = received_ref
