"""The drift check itself can fail: on the real document, an undocumented status, an undocumented
code, and an operation that does not exist are reported with the exact (method, route, status,
code); documented ones, HEAD as GET, OPTIONS, unknown paths and 405 pass."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_drift  # noqa: E402

DOC = check_drift.load_document(os.path.join(check_drift.ROOT, "openapi", "openapi.json"))
CID = "0b4f7bde-2f3a-4d6e-9c1a-2b3c4d5e6f70"


def seen(*tuples):
    return {t: "selftest" for t in tuples}


class DriftCheck(unittest.TestCase):
    def test_documented_answers_pass(self):
        ok = seen(("GET", f"/customers/{CID}", 200, None),
                  ("HEAD", f"/customers/{CID}/favorites", 200, None),
                  ("GET", f"/customers/{CID}", 401, "missing_token"),
                  ("POST", f"/customers/{CID}/favorites/1", 503, "catalog_unavailable"),
                  ("OPTIONS", "/customers", 204, None),
                  ("PUT", "/customers", 405, "method_not_allowed"),
                  ("GET", "/no/such/path", 404, "not_found"),
                  ("POST", "/health", 400, "bad_request"),
                  ("GET", "/health", 431, "request_header_too_large"))
        self.assertEqual(check_drift.check(DOC, ok), {})

    def test_connection_layer_answers_need_the_conventions(self):
        """A connection-layer refusal passes anywhere only while info.description names it."""
        import copy
        doc = copy.deepcopy(DOC)
        doc["info"]["description"] = doc["info"]["description"].replace("431 `request_header_too_large`", "431")
        missing = check_drift.check(doc, seen(("GET", "/health", 431, "request_header_too_large")))
        self.assertEqual(set(missing), {("GET", "/health", 431, "request_header_too_large")})

    def test_undocumented_answers_are_named(self):
        bad = seen(("GET", f"/customers/{CID}", 418, "teapot"),
                   ("GET", f"/customers/{CID}", 401, "no_such_code"),
                   ("PUT", "/customers", 200, None))
        missing = check_drift.check(DOC, bad)
        self.assertEqual(set(missing), {("GET", "/customers/{id}", 418, "teapot"),
                                        ("GET", "/customers/{id}", 401, "no_such_code"),
                                        ("PUT", "/customers", 200, None)})


if __name__ == "__main__":
    unittest.main()
