"""The client against a running coordinator with a provider: GPUMESH_URL and GPUMESH_API_KEY (funded).

test/clients/python-client.test.ts starts both and runs this suite (with and without NumPy).
"""

import hashlib
import http.server
import os
import random
import shutil
import struct
import tempfile
import threading
import unittest
import uuid

from gpumesh import (
    Client,
    GpumeshError,
    JobFailedError,
    Tensor,
    WaitTimeoutError,
    decode_npy,
    encode_tensor,
    matmul_spec,
    verify_webhook,
)
from gpumesh.tensors import npy_header, numpy_module

TOLERANCE = 1e-4  # float32 results against a float64 reference of small values


def reference_matmul(a, b):
    return [[sum(a[i][x] * b[x][j] for x in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]


def as_rows(value):
    """A decoded 2-D output as nested lists, whichever form the client returned."""
    if isinstance(value, Tensor):
        rows, cols = value.shape
        return [value.values[r * cols : (r + 1) * cols] for r in range(rows)]
    return value.tolist()


class LiveClientTest(unittest.TestCase):
    client: Client

    @classmethod
    def setUpClass(cls):
        url, key = os.environ.get("GPUMESH_URL"), os.environ.get("GPUMESH_API_KEY")
        if not url or not key:
            raise RuntimeError("set GPUMESH_URL and GPUMESH_API_KEY (a funded developer key) to run these tests")
        cls.client = Client(url, key, timeout=10)
        if os.environ.get("GPUMESH_REQUIRE_NUMPY") == "1" and numpy_module() is None:
            raise RuntimeError("GPUMESH_REQUIRE_NUMPY=1 but numpy does not import (apt-get install python3-numpy)")

    def random_matrix(self, rows, cols):
        return [[round(random.uniform(-2, 2), 3) for _ in range(cols)] for _ in range(rows)]

    def assert_close(self, got, expected):
        for got_row, row in zip(as_rows(got), expected, strict=True):
            for g, e in zip(got_row, row, strict=True):
                self.assertAlmostEqual(g, e, delta=TOLERANCE * max(1.0, abs(e)))

    def test_submits_waits_and_reads_the_product(self):
        a, b = self.random_matrix(5, 7), self.random_matrix(7, 3)
        job = self.client.submit(matmul_spec(a, b, max_price=5), idempotency_key=str(uuid.uuid4()))
        self.assertEqual(job["state"], "QUEUED")
        done = self.client.wait(job["id"], timeout=30)
        self.assertEqual(done["state"], "COMPLETED", done.get("error"))
        self.assertIsNone(done["error"])
        c = self.client.result(job["id"])["c"]
        np = numpy_module()
        if np is not None:
            self.assertIsInstance(c, np.ndarray)
            self.assertEqual(c.dtype, np.float32)
            expected = np.array(a, dtype=np.float32) @ np.array(b, dtype=np.float32)
            np.testing.assert_allclose(c, expected, rtol=TOLERANCE, atol=TOLERANCE)
        else:
            self.assertEqual(c.dtype, "float32")
            self.assertEqual(c.shape, (5, 3))
        self.assert_close(c, reference_matmul(a, b))

    def test_matmul_convenience_and_polling_wait(self):
        a, b = self.random_matrix(2, 3), self.random_matrix(3, 4)
        self.assert_close(self.client.matmul(a, b, max_price=5, timeout=30), reference_matmul(a, b))
        job = self.client.submit(matmul_spec(a, b, max_price=5))
        self.assertEqual(self.client.wait(job["id"], timeout=30, stream=False)["state"], "COMPLETED")

    def test_events_resume_after_the_last_event_id(self):
        job = self.client.submit(matmul_spec([[1.0]], [[2.0]], max_price=5))
        self.client.wait(job["id"], timeout=30)
        history = list(self.client.events(job["id"], last_event_id="0"))
        self.assertEqual(history[0]["type"], "job.submitted")
        self.assertEqual(history[-1]["toState"], "COMPLETED")
        later = list(self.client.events(job["id"], last_event_id=history[0]["id"]))
        self.assertEqual([e["id"] for e in later], [e["id"] for e in history[1:]])
        self.assertEqual(list(self.client.events(job["id"], last_event_id=history[-1]["id"])), [])

    def test_a_bad_spec_raises_the_api_error_naming_the_field(self):
        spec = matmul_spec([[1.0, 2.0]], [[1.0], [2.0]], max_price=5)
        spec["inputs"][0]["shape"] = [3, 2]  # 6 elements declared, 2 sent
        with self.assertRaises(GpumeshError) as caught:
            self.client.submit(spec)
        err = caught.exception
        self.assertEqual((err.status, err.code), (400, "VALIDATION_FAILED"))
        self.assertEqual(err.field, "inputs[0].data", err.body)
        self.assertEqual(err.body["statusCode"], 400)
        with self.assertRaises(GpumeshError) as caught:
            self.client.submit(matmul_spec([[1.0]], [[1.0]], max_price="cheap"))
        self.assertEqual(caught.exception.field, "maxPricePerUnit", caught.exception.body)

    def test_unknown_jobs_and_bad_keys_are_api_errors(self):
        with self.assertRaises(GpumeshError) as caught:
            self.client.job(str(uuid.uuid4()))
        self.assertEqual((caught.exception.status, caught.exception.code), (404, "JOB_NOT_FOUND"))
        with self.assertRaises(GpumeshError) as caught:
            Client(self.client.base_url, "gm_not_a_key").account()
        self.assertEqual(caught.exception.status, 401)

    def test_lists_and_deletes_uploaded_tensors(self):
        a = self.random_matrix(4, 6)
        uploaded = self.client.upload_tensor(a)
        ref = uploaded["ref"]
        self.assertTrue(ref.startswith("sha256:"))
        self.assertIsNotNone(uploaded["expiresAt"])  # unused uploads expire (TENSOR_RETENTION_DAYS)
        page = self.client.tensors(limit=100)
        mine = [t for t in page["items"] if t["ref"] == ref]
        self.assertEqual(len(mine), 1, page)
        self.assertEqual((mine[0]["dtype"], mine[0]["shape"], mine[0]["jobId"]), ("float32", [4, 6], None))
        self.assertEqual(self.client.delete_tensor(ref), {"ref": ref, "deleted": True})
        self.assertNotIn(ref, [t["ref"] for t in self.client.tensors(limit=100)["items"]])
        with self.assertRaises(GpumeshError) as caught:
            self.client.delete_tensor(ref)
        self.assertEqual((caught.exception.status, caught.exception.code), (404, "TENSOR_NOT_FOUND"))

    def test_uploads_a_large_file_uses_its_ref_and_saves_outputs_and_tensors(self):
        # test/clients/python-client.test.ts runs a second provider on the wasm backend that returns
        # its outputs by ref; the first (cpu) returns them inline
        rows, inner, cols = 640, 512, 4  # a: 1.25 MiB of float32, over a chunk
        a = self.random_matrix(rows, inner)
        b = self.random_matrix(inner, cols)
        data = struct.pack(f"<{rows * inner}f", *(x for row in a for x in row))
        npy = npy_header("float32", (rows, inner)) + data
        folder = tempfile.mkdtemp(prefix="gpumesh-live-")
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "a.npy")
        with open(path, "wb") as f:
            f.write(npy)

        uploaded = self.client.upload_npy_file(path)
        ref = "sha256:" + hashlib.sha256(data).hexdigest()
        self.assertEqual((uploaded["ref"], uploaded["dtype"]), (ref, "float32"))
        self.assertEqual((uploaded["shape"], uploaded["bytes"]), ([rows, inner], len(data)))
        # the same bytes again: the same ref
        self.assertEqual(self.client.upload_npy_file(path)["ref"], ref)

        saved = self.client.save_tensor(ref, os.path.join(folder, "a-back.npy"))
        self.assertEqual((saved["ref"], saved["shape"], saved["bytes"]), (ref, [rows, inner], len(npy)))
        with open(os.path.join(folder, "a-back.npy"), "rb") as f:
            self.assertTrue(f.read() == npy)

        expected = reference_matmul([[struct.unpack("<f", struct.pack("<f", x))[0] for x in row] for row in a], b)
        outputs = {}
        for backend in ("wasm", "cpu"):  # the output by ref, then inline
            spec = matmul_spec([[0.0]], b, max_price=5, requirements={"backends": [backend]})
            spec["inputs"][0] = {"name": "a", "ref": ref}
            job = self.client.wait(self.client.submit(spec)["id"], timeout=60)
            self.assertEqual(job["state"], "COMPLETED", job.get("error"))
            # the result as the API answers it (result() decodes it): by ref or inline
            outputs[backend] = self.client._request("GET", f"/v1/jobs/{job['id']}/result")["result"]["outputs"][0]
            out = os.path.join(folder, f"c-{backend}.npy")
            saved = self.client.save_output(job["id"], "c", out)
            self.assertEqual((saved["dtype"], saved["shape"]), ("float32", [rows, cols]))
            with open(out, "rb") as f:
                written = f.read()
            self.assertEqual(saved["bytes"], len(written))
            c = decode_npy("c", written, use_numpy=False)
            self.assert_close(c, expected)
            self.assertEqual(saved["ref"], "sha256:" + hashlib.sha256(written[-rows * cols * 4 :]).hexdigest())
            if "ref" in outputs[backend]:
                # an output by ref is a tensor of the account too, checked against the same ref
                self.assertEqual(saved["ref"], outputs[backend]["ref"])
                again = self.client.save_tensor(saved["ref"], os.path.join(folder, "c-again.npy"))
                with open(again["path"], "rb") as f:
                    self.assertTrue(f.read() == written)
            else:
                self.assertEqual(encode_tensor("c", c)["data"], outputs[backend]["data"])
        self.assertIn("ref", outputs["wasm"])
        self.assertNotIn("ref", outputs["cpu"])
        self.assertFalse([f for f in os.listdir(folder) if f.endswith(".part")])

    def test_account_dry_run_and_cancel(self):
        account = self.client.account()
        self.assertGreater(int(account["balance"]), 0)
        self.assertGreaterEqual(int(account["reserved"]), 0)
        spec = matmul_spec([[1.0]], [[1.0]], max_price=5)
        estimate = self.client.dry_run(spec)
        self.assertTrue(estimate["placeable"], estimate["reasons"])
        self.assertEqual(int(estimate["cost"]), 5)
        # no provider has 1 TiB of VRAM: the job stays queued until cancelled
        stuck = matmul_spec([[1.0]], [[1.0]], max_price=5, requirements={"minVramMiB": 1 << 20})
        self.assertFalse(self.client.dry_run(stuck)["placeable"])
        job = self.client.submit(stuck)
        with self.assertRaises(WaitTimeoutError) as waited:
            self.client.wait(job["id"], timeout=0.3)
        self.assertEqual(waited.exception.job["state"], "QUEUED")
        self.assertEqual(self.client.cancel(job["id"])["state"], "CANCELLED")
        done = self.client.wait(job["id"], timeout=10)
        self.assertEqual(done["state"], "CANCELLED")
        with self.assertRaises(GpumeshError) as caught:
            self.client.result(job["id"])
        self.assertEqual(caught.exception.code, "RESULT_NOT_READY")


    def test_webhook_deliveries_verify_with_the_secret(self):
        received = []
        secret = {}

        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers["content-length"]))
                genuine = verify_webhook(secret["value"], raw, self.headers)
                received.append((genuine, raw))
                self.send_response(204 if genuine else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            # a coordinator takes this local http receiver with WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true
            hook = self.client.set_webhook(f"http://127.0.0.1:{server.server_port}/gpumesh")
        except BaseException:
            server.server_close()
            raise
        try:
            secret["value"] = hook["secret"]
            ping = self.client.test_webhook()
            self.assertTrue(ping["delivered"], ping)
            self.assertEqual(ping["status"], 204)
            self.assertEqual([genuine for genuine, _ in received], [True])
            secret["value"] = "whsec_wrong"
            self.assertEqual(self.client.test_webhook()["status"], 401)
        finally:
            self.client.delete_webhook()
            server.shutdown()
            server.server_close()


    def test_a_job_that_ends_without_a_result_raises_its_error(self):
        # no provider has 1 TiB of VRAM: the job expires at its 1 s deadline, with the reason
        stuck = matmul_spec([[1.0]], [[1.0]], max_price=5, deadline_seconds=1, requirements={"minVramMiB": 1 << 20})
        with self.assertRaises(JobFailedError) as caught:
            self.client.run(stuck, timeout=20)
        err = caught.exception
        self.assertEqual((err.state, err.code), ("EXPIRED", "DEADLINE_PASSED"))
        self.assertEqual(err.job["error"]["message"], err.message)
        self.assertTrue(err.message)


if __name__ == "__main__":
    unittest.main()
