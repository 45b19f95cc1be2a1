#!/usr/bin/env python3
"""Unit tests of worker/steps/lib/odoo_test_log.py (run by ctest: make unit)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "worker", "steps", "lib"))
import odoo_test_log  # noqa: E402

# Lines as Odoo 17 writes them (odoo/tests/result.py, odoo/service/server.py).
ODOO17 = """\
2026-01-01 10:00:00,001 4242 INFO shop odoo.modules.loading: loading 12 modules...
2026-01-01 10:00:01,100 4242 INFO shop odoo.addons.acme_sale.tests.test_order: Starting TestOrder.test_total ...
2026-01-01 10:00:01,200 4242 INFO shop odoo.addons.acme_sale.tests.test_order: ======================================================================
2026-01-01 10:00:01,201 4242 ERROR shop odoo.addons.acme_sale.tests.test_order: FAIL: TestOrder.test_discount
Traceback (most recent call last):
  File "/src/acme_sale/tests/test_order.py", line 12, in test_discount
    self.assertEqual(1, 2)
AssertionError: 1 != 2

2026-01-01 10:00:01,300 4242 ERROR shop odoo.addons.acme_stock.tests.test_move: ERROR: TestMove.test_done
Traceback (most recent call last):
KeyError: 'x'
2026-01-01 10:00:02,000 4242 INFO shop odoo.tests.stats: acme_sale: 3 tests 0.10s 40 queries
2026-01-01 10:00:02,001 4242 INFO shop odoo.tests.stats: acme_stock: 2 tests 0.05s 10 queries
2026-01-01 10:00:02,002 4242 ERROR shop odoo.tests.result: 1 failed, 1 error(s) of 5 tests when loading database 'shop'
""".splitlines(True)


class ParseTest(unittest.TestCase):
    def test_odoo17_log(self):
        r = odoo_test_log.parse(ODOO17)
        self.assertEqual((r["tests"], r["passed"], r["failed"], r["errors"]), (5, 3, 1, 1))
        self.assertEqual(r["modules"]["acme_sale"], {"tests": 3, "passed": 2, "failed": 1, "errors": 0})
        self.assertEqual(r["modules"]["acme_stock"], {"tests": 2, "passed": 1, "failed": 0, "errors": 1})
        self.assertEqual(r["failing"], ["acme_sale: TestOrder.test_discount", "acme_stock: TestMove.test_done (error)"])
        self.assertEqual(r["log_errors"], 0)  # the result line and test failures are not other errors
        self.assertTrue(r["summary_seen"])

    def test_ran_lines_and_unittest_descriptions(self):
        log = [
            "2026-01-01 10:00:00,000 1 INFO db odoo.modules.module: odoo.addons.m.tests.test_a: Ran 4 tests in 0.1s\n",
            "2026-01-01 10:00:00,000 1 INFO db odoo.addons.m.tests.test_b: Ran 2 tests in 0.1s\n",
            "2026-01-01 10:00:00,000 1 ERROR db odoo.modules.module: FAIL: test_x (odoo.addons.m.tests.test_a.TestA.test_x)\n",
        ]
        r = odoo_test_log.parse(log)
        self.assertEqual(r["modules"]["m"], {"tests": 6, "passed": 5, "failed": 1, "errors": 0})
        self.assertEqual(r["failing"], ["m: test_x (odoo.addons.m.tests.test_a.TestA.test_x)"])
        self.assertFalse(r["summary_seen"])
        self.assertEqual((r["tests"], r["passed"], r["failed"]), (6, 5, 1))

    def test_ran_lines_sum_per_module(self):
        log = ["2026-01-01 10:00:00,000 1 INFO db odoo.addons.m.tests.test_%s: Ran %d tests in 0.1s\n" % (f, n)
               for f, n in (("a", 4), ("b", 2))]
        r = odoo_test_log.parse(log)
        self.assertEqual(r["modules"]["m"], {"tests": 6, "passed": 6, "failed": 0, "errors": 0})
        self.assertEqual((r["tests"], r["passed"]), (6, 6))

    def test_other_errors_are_counted_apart(self):
        log = ["2026-01-01 10:00:00,000 1 CRITICAL db odoo.service.server: Failed to initialize database `db`.\n",
               "2026-01-01 10:00:00,000 1 ERROR db odoo.modules.loading: Some modules are not loaded\n",
               "2026-01-01 10:00:00,000 1 INFO db odoo.tests.result: 0 failed, 0 error(s) of 0 tests when loading database 'db'\n"]
        r = odoo_test_log.parse(log)
        self.assertEqual(r["log_errors"], 2)
        self.assertEqual((r["tests"], r["failed"], r["errors"], r["failing"]), (0, 0, 0, []))

    def test_empty_log(self):
        r = odoo_test_log.parse([])
        self.assertEqual(r, {"passed": 0, "failed": 0, "errors": 0, "tests": 0, "modules": {}, "failing": [],
                             "log_errors": 0, "summary_seen": False})

    def test_failing_names_are_bounded(self):
        log = ["2026-01-01 10:00:00,000 1 ERROR db odoo.addons.m.tests.t: FAIL: T.test_%d%s\n" % (i, "x" * 500)
               for i in range(80)]
        r = odoo_test_log.parse(log)
        self.assertEqual(r["failed"], 80)
        self.assertEqual(len(r["failing"]), odoo_test_log.MAX_FAILING)
        self.assertTrue(all(len(n) <= odoo_test_log.MAX_NAME for n in r["failing"]))


if __name__ == "__main__":
    unittest.main()
