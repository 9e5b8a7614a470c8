"""Tensor encoding, the event-stream parser, webhook signatures and retries, without a coordinator."""

import base64
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import struct
import tempfile
import threading
import time
import unittest
import urllib.parse
from unittest import mock

from gpumesh import (
    Client,
    DownloadError,
    GpumeshError,
    JobFailedError,
    Tensor,
    decode_npy,
    decode_tensor,
    encode_tensor,
    sign_webhook,
    verify_webhook,
)
from gpumesh.client import _save_npy, retry_after_seconds
from gpumesh.sse import parse_events
from gpumesh.tensors import npy_header, numpy_module, read_npy_header


class TensorTest(unittest.TestCase):
    def test_encodes_nested_lists_as_little_endian_float32(self):
        wire = encode_tensor("a", [[1.0, 2.0], [3.0, 4.0]])
        # the same bytes as encodeTensor('a', 'float32', [2, 2], [1, 2, 3, 4]) of libs/protocol
        self.assertEqual(wire, {"name": "a", "dtype": "float32", "shape": [2, 2], "data": "AACAPwAAAEAAAEBAAACAQA=="})

    def test_decodes_without_numpy_to_a_flat_tensor(self):
        wire = encode_tensor("i", [[1, -2, 3]], "int32")
        self.assertEqual(decode_tensor(wire, use_numpy=False), Tensor("int32", (1, 3), [1, -2, 3]))
        flags = encode_tensor("f", [True, False], "bool")
        self.assertEqual(base64.b64decode(flags["data"]), b"\x01\x00")
        self.assertEqual(decode_tensor(flags, use_numpy=False).values, [True, False])

    def test_refuses_data_that_does_not_fill_the_shape(self):
        wire = {"name": "x", "dtype": "float32", "shape": [3], "data": base64.b64encode(struct.pack("<2f", 1, 2)).decode()}
        with self.assertRaisesRegex(ValueError, "8 bytes do not fill float32 shape \\[3\\]"):
            decode_tensor(wire, use_numpy=False)
        with self.assertRaisesRegex(ValueError, "ragged"):
            encode_tensor("r", [[1.0], [1.0, 2.0]])

    def test_round_trips_numpy_arrays_when_numpy_is_there(self):
        np = numpy_module()
        if np is None:
            self.assertIsInstance(decode_tensor(encode_tensor("a", [1.5])), Tensor)
            return
        a = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
        back = decode_tensor(encode_tensor("a", a))
        self.assertEqual(back.dtype, np.float32)
        self.assertEqual(back.shape, (2, 3))
        np.testing.assert_array_equal(back, a.astype(np.float32))
        self.assertEqual(encode_tensor("a", a), encode_tensor("a", a.astype(np.float32).tolist()))


def _npy(descr, shape, data, fortran=False):
    """A version 1.0 .npy file, written by hand (what numpy.save writes: header padded to 64 bytes)."""
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %r, }" % (descr, fortran, tuple(shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data


class NpyTest(unittest.TestCase):
    def test_decodes_the_npy_files_outputs_are_served_as(self):
        npy = _npy("<f4", (2, 2), struct.pack("<4f", 1, 2, 3, 4))
        self.assertEqual(decode_npy("c", npy, use_numpy=False), Tensor("float32", (2, 2), [1.0, 2.0, 3.0, 4.0]))
        flags = decode_npy("m", _npy("|b1", (3,), b"\x01\x00\x01"), use_numpy=False)
        self.assertEqual(flags, Tensor("bool", (3,), [True, False, True]))
        np = numpy_module()
        if np is not None:
            import io  # noqa: PLC0415

            a = (np.arange(12, dtype=np.float32) / 3).reshape(3, 4)
            buf = io.BytesIO()
            np.save(buf, a)
            self.assertTrue(np.array_equal(decode_npy("a", buf.getvalue()), a))
            self.assertEqual(decode_npy("a", buf.getvalue(), use_numpy=False).values, [float(x) for x in a.flatten()])

    def test_refuses_what_it_cannot_read(self):
        with self.assertRaisesRegex(ValueError, "not a .npy file"):
            decode_npy("x", b"PK\x03\x04")
        with self.assertRaisesRegex(ValueError, "C-order"):
            decode_npy("x", _npy("<f4", (2, 2), b"\x00" * 16, fortran=True))
        with self.assertRaisesRegex(ValueError, "not float32, int32 or bool"):
            decode_npy("x", _npy("<f8", (1,), b"\x00" * 8))
        with self.assertRaisesRegex(ValueError, "12 bytes do not fill float32 shape \\[2, 2\\]"):
            decode_npy("x", _npy("<f4", (2, 2), b"\x00" * 12), use_numpy=False)


class GpumeshErrorTest(unittest.TestCase):
    def test_names_the_fields_of_either_details_form_or_the_message(self):
        objects = GpumeshError(400, "VALIDATION_FAILED", "x", {"errors": [{"path": "inputs[0].data", "message": "m"}]})
        self.assertEqual(objects.field, "inputs[0].data")
        strings = GpumeshError(400, "VALIDATION_FAILED", "a: x; b: y", {"errors": ["limit: too big", "cursor: bad"]})
        self.assertEqual(strings.fields, ["limit", "cursor"])
        self.assertEqual(GpumeshError(400, "VALIDATION_FAILED", "redundancy: at most 3").field, "redundancy")
        self.assertIsNone(GpumeshError(404, "JOB_NOT_FOUND", "no such job").field)
        self.assertEqual(str(GpumeshError(404, "JOB_NOT_FOUND", "no such job")), "404 JOB_NOT_FOUND: no such job")


class JobFailedErrorTest(unittest.TestCase):
    def test_carries_the_jobs_error(self):
        job = {"id": "j1", "state": "FAILED", "error": {"code": "INPUT_REJECTED", "message": "BAD_INPUT: shape"}}
        err = JobFailedError(job)
        self.assertEqual((err.state, err.code, err.message), ("FAILED", "INPUT_REJECTED", "BAD_INPUT: shape"))
        self.assertEqual(str(err), "job j1 FAILED: INPUT_REJECTED: BAD_INPUT: shape")
        self.assertEqual(JobFailedError({"id": "j2", "state": "CANCELLED", "error": None}).code, "CANCELLED")


class EventStreamTest(unittest.TestCase):
    def test_parses_events_ids_and_skips_comments(self):
        body = (
            b"id: 0\nretry: 3000\n: events of job x\n\n"
            b'event: job-event\nid: 7\ndata: {"id":"7"}\n\n'
            b": ping\n\n"
            b"event: job-event\r\nid: 9\r\ndata: a\r\ndata: b\r\n\r\n"
        )
        events = list(parse_events(body.splitlines(keepends=True)))
        self.assertEqual([(e.event, e.id, e.data) for e in events], [("", "0", ""), ("job-event", "7", '{"id":"7"}'), ("job-event", "9", "a\nb")])


class WebhookTest(unittest.TestCase):
    SECRET = "whsec_test"
    BODY = b'{"type":"job.completed","jobId":"j1"}'

    def headers(self, timestamp, body=BODY, secret=SECRET):
        return {"X-Gpumesh-Timestamp": str(timestamp), "x-gpumesh-signature": sign_webhook(secret, timestamp, body)}

    def test_accepts_a_fresh_genuine_delivery(self):
        self.assertTrue(verify_webhook(self.SECRET, self.BODY, self.headers(1_000_000), now=1_000_100))
        # HMAC-SHA256 of "<timestamp>.<raw body>" (docs/push.md), as Node's createHmac computes it
        expected = "sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        self.assertEqual(sign_webhook("k", 1, b"{}"), expected)

    def test_refuses_tampering_other_secrets_and_old_timestamps(self):
        headers = self.headers(1_000_000)
        self.assertFalse(verify_webhook(self.SECRET, self.BODY + b" ", headers, now=1_000_000))
        self.assertFalse(verify_webhook("other", self.BODY, headers, now=1_000_000))
        self.assertFalse(verify_webhook(self.SECRET, self.BODY, headers, now=1_000_301))
        self.assertFalse(verify_webhook(self.SECRET, self.BODY, {**headers, "X-Gpumesh-Timestamp": "-1"}, now=0))
        self.assertFalse(verify_webhook(self.SECRET, self.BODY, {}, now=0))


def _serve(test, handler):
    """A threading http.server on a free loopback port serving ``handler``, shut down after ``test``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    test.addCleanup(server.server_close)
    test.addCleanup(server.shutdown)
    return server


class RetryTest(unittest.TestCase):
    """429/503 answers are retried after Retry-After, against a local HTTP server."""

    def serve(self, answers):
        import http.server
        import threading

        times = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                times.append(time.monotonic())
                status, headers = answers.pop(0) if answers else (200, {})
                body = b'{"id": "acct"}' if status == 200 else json.dumps(
                    {"statusCode": status, "error": {"code": "RATE_LIMITED", "message": "slow down"}}
                ).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = _serve(self, Handler)
        return f"http://127.0.0.1:{server.server_address[1]}", times

    def test_retries_429_after_retry_after_and_503_with_backoff(self):
        url, times = self.serve([(429, {"Retry-After": "1"}), (503, {})])
        self.assertEqual(Client(url, "k").account(), {"id": "acct"})
        self.assertEqual(len(times), 3)
        self.assertGreaterEqual(times[1] - times[0], 0.95)
        self.assertGreaterEqual(times[2] - times[1], 0.2)

    def test_gives_up_after_max_retries(self):
        url, times = self.serve([(429, {}), (429, {}), (429, {})])
        with self.assertRaises(GpumeshError) as caught:
            Client(url, "k", max_retries=1).account()
        self.assertEqual(caught.exception.status, 429)
        self.assertEqual(caught.exception.code, "RATE_LIMITED")
        self.assertEqual(len(times), 2)

    def test_reads_retry_after_as_seconds_or_a_date(self):
        self.assertEqual(retry_after_seconds("3"), 3.0)
        self.assertAlmostEqual(retry_after_seconds("Sun, 06 Dec 2026 12:00:05 GMT", now=1796558400.0), 5.0)
        self.assertIsNone(retry_after_seconds("soon"))
        self.assertIsNone(retry_after_seconds(None))


def _float32_npy(rows, cols):
    """(a .npy file of float32 rows x cols, its element bytes, its ref)."""
    data = struct.pack(f"<{rows * cols}f", *(((i * 7919) % 1000) / 7 for i in range(rows * cols)))
    return _npy("<f4", (rows, cols), data), data, "sha256:" + hashlib.sha256(data).hexdigest()


class NpyHeaderTest(unittest.TestCase):
    def test_reads_a_header_from_a_prefix_as_the_coordinator_does(self):
        npy, _, _ = _float32_npy(3, 5)
        self.assertEqual(npy[:128], npy_header("float32", (3, 5)))  # numpy.save's bytes: padded to 64
        for cut in (0, 5, 9, 11, 127):
            self.assertIsNone(read_npy_header(npy[:cut]), cut)
        self.assertEqual(tuple(read_npy_header(npy[:128])), ("float32", (3, 5), 128, 60))
        self.assertEqual(read_npy_header(_npy("<b1", (), b"\x01")).dtype, "bool")
        with self.assertRaisesRegex(ValueError, "not a .npy file"):
            read_npy_header(b"\x93NUMPx")
        with self.assertRaisesRegex(ValueError, "version 4.0 is not supported"):
            read_npy_header(b"\x93NUMPY\x04\x00\x00\x00\x00\x00")
        with self.assertRaisesRegex(ValueError, "dtype '<f8' is not supported"):
            read_npy_header(_npy("<f8", (1,), b""))
        with self.assertRaisesRegex(ValueError, "Fortran order"):
            read_npy_header(_npy("<f4", (1,), b"", fortran=True))
        with self.assertRaisesRegex(ValueError, "rank 7"):
            read_npy_header(_npy("<f4", (1,) * 7, b""))


class _TensorServer:
    """A coordinator's tensor routes on a local http.server: GET answers ``bodies[path]`` (a
    ``content-length`` of ``lengths[path]`` when set, else the body's), POST /v1/tensors reads the
    body (unless the answer is sent first) and answers from ``answers``."""

    def __init__(self, test):
        self.bodies = {}
        self.lengths = {}
        self.answers = []
        self.uploads = []
        server_state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                body = server_state.bodies.get(self.path)
                if body is None:
                    missing = {"statusCode": 404, "error": {"code": "TENSOR_NOT_FOUND", "message": "no"}}
                    return self.answer(404, missing)
                is_json = isinstance(body, dict)
                raw = json.dumps(body).encode() if is_json else body
                self.send_response(200)
                self.send_header("content-type", "application/json" if is_json else "application/x-npy")
                self.send_header("content-length", str(server_state.lengths.get(self.path, len(raw))))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):  # noqa: N802
                status, headers, body, read_first = server_state.answers.pop(0)
                length = int(self.headers["content-length"])
                received = self.read_exactly(length) if read_first else None
                server_state.uploads.append(({k.lower(): v for k, v in self.headers.items()}, received))
                self.answer(status, body, headers)
                if not read_first:
                    # as a coordinator refusing early does: the answer, then the rest left unread
                    self.close_connection = True

            def read_exactly(self, n):
                chunks = []
                while n > 0:
                    chunk = self.rfile.read(min(n, 1 << 20))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    n -= len(chunk)
                return b"".join(chunks)

            def answer(self, status, body, headers=None):
                raw = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = _serve(test, Handler)
        self.client = Client(f"http://127.0.0.1:{self.server.server_address[1]}", "gmk_test", timeout=10)


class _ForwardProxy:
    """A forward HTTP proxy on a local http.server: takes POSTs in absolute form, records their
    target and headers in ``requests`` and passes them on (without Proxy-Authorization)."""

    def __init__(self, test):
        self.requests = []
        proxy_state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy_state.requests.append((self.path, headers))
                target = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(headers["content-length"]))
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                passed = {k: v for k, v in headers.items() if k not in ("proxy-authorization", "connection")}
                upstream.request("POST", target.path + (f"?{target.query}" if target.query else ""), body, passed)
                answer = upstream.getresponse()
                raw = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                upstream.close()

            def log_message(self, *args):
                pass

        self.port = _serve(test, Handler).server_address[1]


class NpyFileTest(unittest.TestCase):
    """Uploads streamed from a file and downloads streamed to one, against a local HTTP server."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gpumesh-npy-files-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.served = _TensorServer(self)
        self.client = self.served.client

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def read(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def test_checks_a_file_before_sending_it_naming_the_file(self):
        npy, _, _ = _float32_npy(30, 7)
        cases = [
            (
                "short.npy",
                npy[:-4],
                f"short.npy: its header announces float32\\[30,7\\] \\({len(npy)} bytes with the header\\) "
                f"but the file has {len(npy) - 4}$",
            ),
            ("long.npy", npy + b"\x00", f"long.npy: .* but the file has {len(npy) + 1}$"),
            ("text.npy", b"a,b\n1,2\n", "text.npy: not a .npy file"),
            ("half.npy", npy[:20], "half.npy: .npy file is truncated inside its header"),
            ("f64.npy", _npy("<f8", (2,), b"\x00" * 16), "f64.npy: .npy dtype '<f8' is not supported"),
        ]
        for name, data, message in cases:
            with self.assertRaisesRegex(ValueError, message):
                self.client.upload_npy_file(self.write(name, data))
        with self.assertRaisesRegex(ValueError, "cannot read .*missing.npy"):
            self.client.upload_npy_file(os.path.join(self.dir, "missing.npy"))
        self.assertEqual(self.served.uploads, [])  # nothing was sent

    def test_uploads_a_file_as_it_is_read_again_after_a_429(self):
        npy, _, ref = _float32_npy(600, 600)  # 1.4 MiB: more than one chunk
        path = self.write("a.npy", npy)
        answer = {"ref": ref, "dtype": "float32", "shape": [600, 600], "bytes": len(npy) - 128}
        limited = {"statusCode": 429, "error": {"code": "RATE_LIMITED", "message": "m"}}
        self.served.answers = [(429, {"Retry-After": "1"}, limited, True), (201, {}, answer, True)]
        started = time.monotonic()
        self.assertEqual(self.client.upload_npy_file(path), answer)
        self.assertGreaterEqual(time.monotonic() - started, 0.95)
        self.assertEqual(len(self.served.uploads), 2)
        for headers, body in self.served.uploads:
            self.assertEqual(headers["authorization"], "Bearer gmk_test")
            self.assertEqual(headers["content-type"], "application/x-npy")
            self.assertEqual(headers["content-length"], str(len(npy)))
            self.assertTrue(body == npy)

    def test_an_upload_refused_before_it_is_read_raises_the_api_error(self):
        npy = _npy("<f4", (2048, 1024), bytes(8 << 20))  # 8 MiB: more than the sockets buffer
        path = self.write("big.npy", npy)
        error = {"statusCode": 413, "error": {"code": "PAYLOAD_TOO_LARGE", "message": "over the quota"}}
        self.served.answers = [(413, {"connection": "close"}, error, False)]
        with self.assertRaises(GpumeshError) as caught:
            self.client.upload_npy_file(path)
        self.assertEqual((caught.exception.status, caught.exception.code), (413, "PAYLOAD_TOO_LARGE"))

    def test_uploads_a_file_through_the_environments_proxy_unless_no_proxy_names_the_host(self):
        npy, _, ref = _float32_npy(600, 600)  # 1.4 MiB: more than one chunk
        path = self.write("a.npy", npy)
        answer = {"ref": ref, "dtype": "float32", "shape": [600, 600], "bytes": len(npy) - 128}
        proxy = _ForwardProxy(self)
        coordinator = f"127.0.0.1:{self.served.server.server_address[1]}"
        environ = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        environ["http_proxy"] = f"http://user:p%40ss@127.0.0.1:{proxy.port}"
        with mock.patch.dict(os.environ, environ, clear=True):
            self.served.answers = [(201, {}, answer, True)]
            self.assertEqual(self.client.upload_npy_file(path), answer)
            # the proxy got the request in absolute form with its credentials, and forwarded the body
            self.assertEqual(len(proxy.requests), 1)
            target, headers = proxy.requests[0]
            self.assertEqual(target, f"http://{coordinator}/v1/tensors")
            self.assertEqual(headers["host"], coordinator)
            self.assertEqual(headers["proxy-authorization"], "Basic " + base64.b64encode(b"user:p@ss").decode())
            self.assertTrue(self.served.uploads[0][1] == npy)
            self.assertNotIn("proxy-authorization", self.served.uploads[0][0])  # not passed on

            os.environ["no_proxy"] = "127.0.0.1"
            self.served.answers = [(201, {}, answer, True)]
            self.assertEqual(self.client.upload_npy_file(path), answer)
            self.assertEqual(len(proxy.requests), 1)  # straight to the coordinator
            self.assertEqual(len(self.served.uploads), 2)

            os.environ.pop("no_proxy")
            os.environ["http_proxy"] = "socks5://127.0.0.1:1080"
            with self.assertRaisesRegex(ValueError, "only an http:// proxy"):
                self.client.upload_npy_file(path)

    def test_saves_a_tensor_that_matches_its_ref(self):
        npy, _, ref = _float32_npy(700, 500)  # 1.3 MiB: its chunks hashed as they arrive
        self.served.bodies[f"/v1/tensors/sha256%3A{ref[7:]}"] = npy
        path = os.path.join(self.dir, "t.npy")
        saved = self.client.save_tensor(ref, path)
        expected = {"path": path, "ref": ref, "dtype": "float32", "shape": [700, 500], "bytes": len(npy)}
        self.assertEqual(saved, expected)
        self.assertTrue(self.read("t.npy") == npy)
        self.assertEqual(os.listdir(self.dir), ["t.npy"])
        # a temporary file a killed process with this id left is replaced, then renamed
        self.write(f".t.npy.{os.getpid()}.part", b"left by a killed process")
        self.client.save_tensor(ref, path)
        self.assertEqual(os.listdir(self.dir), ["t.npy"])
        with self.assertRaisesRegex(ValueError, "not a ref"):
            self.client.save_tensor("sha256:abc", path)

    def test_keeps_an_older_file_when_the_bytes_do_not_match_the_ref(self):
        npy, _, ref = _float32_npy(16, 16)
        tampered = npy[:-1] + bytes([npy[-1] ^ 1])
        self.served.bodies[f"/v1/tensors/sha256%3A{ref[7:]}"] = tampered
        path = self.write("t.npy", b"an older result")
        with self.assertRaises(DownloadError) as caught:
            self.client.save_tensor(ref, path)
        err = caught.exception
        self.assertRegex(
            str(err), f"^the bytes received hash to sha256:[0-9a-f]{{64}}, not {ref}: .*t.npy not written$"
        )
        self.assertEqual((err.path, err.expected_ref), (path, ref))
        self.assertEqual(err.received_ref, "sha256:" + hashlib.sha256(tampered[128:]).hexdigest())
        self.assertIsInstance(err, ValueError)
        self.assertEqual(self.read("t.npy"), b"an older result")
        self.assertEqual(os.listdir(self.dir), ["t.npy"])

    def test_fails_a_download_cut_short_or_not_npy_leaving_no_file(self):
        npy, _, ref = _float32_npy(16, 16)
        url = f"/v1/tensors/sha256%3A{ref[7:]}"
        path = os.path.join(self.dir, "t.npy")
        cases = [
            (npy[:-8], len(npy), f"the download has {len(npy) - 8} bytes; its header announces {len(npy)}"),
            (npy + b"\x00", None, f"the download runs past the {len(npy)} bytes its header announces"),
            (b"<html>oops</html>", None, "the download is not a .npy file"),
            (npy[:9], None, "the download ended inside the .npy header \\(9 bytes\\)"),
        ]
        for body, length, message in cases:
            self.served.bodies[url] = body
            if length is None:
                self.served.lengths.pop(url, None)
            else:
                self.served.lengths[url] = length  # the connection closes before all of it came
            with self.assertRaisesRegex(DownloadError, message):
                self.client.save_tensor(ref, path)
            self.assertEqual(os.listdir(self.dir), [])

    def test_refuses_a_second_save_to_the_same_path_while_the_first_writes(self):
        npy, _, ref = _float32_npy(16, 16)
        self.served.bodies[f"/v1/tensors/sha256%3A{ref[7:]}"] = npy
        path = os.path.join(self.dir, "t.npy")
        test = self
        second = []

        class Body(io.BytesIO):
            """The first save's body: its first read starts a second save to the same path."""

            def read(self, n=-1):
                if not second:
                    with test.assertRaisesRegex(RuntimeError, "t.npy is already being written by this process"):
                        test.client.save_tensor(ref, path)
                    second.append(True)
                return super().read(n)

        self.assertEqual(_save_npy(Body(npy), path, ref)["ref"], ref)
        self.assertEqual(second, [True])
        self.assertTrue(self.read("t.npy") == npy)
        self.assertEqual(os.listdir(self.dir), ["t.npy"])

    def test_saves_a_jobs_outputs_by_ref_checked_and_inline(self):
        npy, data, ref = _float32_npy(300, 300)
        small = struct.pack("<3i", 1, -2, 3)
        self.served.bodies["/v1/jobs/j1/result"] = {
            "jobId": "j1",
            "result": {
                "outputs": [
                    {"name": "c", "dtype": "float32", "shape": [300, 300], "ref": ref, "bytes": len(data)},
                    {"name": "d", "dtype": "int32", "shape": [3], "data": base64.b64encode(small).decode()},
                ]
            },
        }
        self.served.bodies["/v1/jobs/j1/outputs/c"] = npy
        saved = self.client.save_output("j1", "c", os.path.join(self.dir, "c.npy"))
        self.assertEqual((saved["ref"], saved["shape"], saved["bytes"]), (ref, [300, 300], len(npy)))
        self.assertTrue(self.read("c.npy") == npy)
        saved = self.client.save_output("j1", "d", os.path.join(self.dir, "d.npy"))
        self.assertEqual((saved["dtype"], saved["shape"]), ("int32", [3]))
        self.assertEqual(decode_npy("d", self.read("d.npy"), use_numpy=False), Tensor("int32", (3,), [1, -2, 3]))
        np = numpy_module()
        if np is not None:
            np.testing.assert_array_equal(np.load(os.path.join(self.dir, "d.npy")), [1, -2, 3])
        # the output's bytes are checked against the ref the result names
        self.served.bodies["/v1/jobs/j1/outputs/c"] = _float32_npy(300, 300)[0][:-4] + b"\x00\x00\x00\x00"
        with self.assertRaisesRegex(DownloadError, "c.npy not written"):
            self.client.save_output("j1", "c", os.path.join(self.dir, "c.npy"))
        self.assertTrue(self.read("c.npy") == npy)
        with self.assertRaisesRegex(ValueError, "job j1 has no output 'e' \\(outputs: c, d\\)"):
            self.client.save_output("j1", "e", os.path.join(self.dir, "e.npy"))
        self.assertEqual(sorted(os.listdir(self.dir)), ["c.npy", "d.npy"])


if __name__ == "__main__":
    unittest.main()
