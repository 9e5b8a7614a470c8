"""Tensor encoding, the event-stream parser, webhook signatures and retries, without a coordinator."""

import base64
import json
import struct
import time
import unittest

from gpumesh import (
    Client,
    GpumeshError,
    JobFailedError,
    Tensor,
    decode_npy,
    decode_tensor,
    encode_tensor,
    sign_webhook,
    verify_webhook,
)
from gpumesh.client import retry_after_seconds
from gpumesh.sse import parse_events
from gpumesh.tensors import numpy_module


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


if __name__ == "__main__":
    unittest.main()


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

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
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
