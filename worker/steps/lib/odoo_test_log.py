#!/usr/bin/env python3
"""Reads the log of an `odoo-bin --test-enable` run into a summary:

    {"passed": P, "failed": F, "errors": E, "tests": K,
     "modules": {"<module>": {"tests": k, "passed": p, "failed": f, "errors": e}},
     "failing": ["<module>: TestClass.test_x", "<module>: TestClass.test_y (error)"],
     "log_errors": N, "summary_seen": true|false}

`parse(lines)` is a pure function of the log's lines. The format is Odoo
17's (`<date> <time>,<ms> <pid> <LEVEL> <db> <logger>: <message>`):

* a failing or erroring test: an ERROR line whose logger is the test's
  Python module (`odoo.addons.<m>.tests.<file>`) and whose message is
  `FAIL: TestClass.test_x` or `ERROR: TestClass.test_x` (Odoo's own
  description), or the plain unittest description
  `FAIL: test_x (odoo.addons.<m>.tests.<file>.TestClass.test_x)`;
* tests run per module: `odoo.tests.stats: <m>: N tests ...` (Odoo 17) or
  `Ran N tests` (one per test file, summed) under the logger
  `odoo.addons.<m>.tests.<file>`, or under `odoo.modules.module` with
  `odoo.addons.<m>.tests.<file>: ` first;
* the run's total: `odoo.tests.result: F failed, E error(s) of K tests when
  loading database ...`, which wins over the sums when present.

ERROR and CRITICAL lines that are no test's failure (a module that does not
install, a traceback outside a test) are counted in `log_errors`: a run
with any of them did not test what it was asked to.

Run as a program: `odoo_test_log.py LOG` prints the summary as JSON.
"""
import json
import re
import sys

# <date> <time>[,ms] <pid> <LEVEL> <db> <logger>: <message>
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)? +\d+ +(?P<level>[A-Z]+) +(?P<db>\S+) +"
                  r"(?P<logger>[\w.-]+): ?(?P<message>.*)$")
ADDON = re.compile(r"^odoo\.addons\.(?P<module>\w+)(?:\.|$)")
FAILURE = re.compile(r"^(?P<flavour>FAIL|ERROR): (?P<description>.+)$")
UNITTEST_DESCRIPTION = re.compile(r"\((?:odoo\.addons\.)(?P<module>\w+)\.[\w.]+\)\s*$")
RAN = re.compile(r"^(?:(?P<logger>odoo\.addons\.[\w.]+): )?Ran (?P<n>\d+) tests?\b")
STATS = re.compile(r"^(?P<module>\w+): (?P<n>\d+) tests\b")
RESULT = re.compile(r"^(?P<failed>\d+) failed, (?P<errors>\d+) error\(s\) of (?P<tests>\d+) tests\b")

# A failing test's name is kept whole up to this length (a summary that is
# stored in the run's result and sent to git hosts stays small).
MAX_NAME = 200
MAX_FAILING = 50


def _module_of_failure(logger, description):
    match = ADDON.match(logger)
    if match:
        return match.group("module")
    match = UNITTEST_DESCRIPTION.search(description)
    return match.group("module") if match else None


def parse(lines):
    """The summary of an Odoo test log given as an iterable of lines."""
    modules = {}
    failing = []
    failed = errors = log_errors = 0
    total = None

    def module(name):
        return modules.setdefault(name, {"tests": 0, "passed": 0, "failed": 0, "errors": 0,
                                         "_ran": 0, "_stats": None})

    for raw in lines:
        match = LINE.match(raw.rstrip("\n"))
        if not match:
            continue  # tracebacks and other continuation lines
        level, logger, message = match.group("level"), match.group("logger"), match.group("message")
        failure = FAILURE.match(message) if level == "ERROR" else None
        name = _module_of_failure(logger, failure.group("description")) if failure else None
        if failure and name:
            kind = "failed" if failure.group("flavour") == "FAIL" else "errors"
            module(name)[kind] += 1
            if kind == "failed":
                failed += 1
            else:
                errors += 1
            if len(failing) < MAX_FAILING:
                suffix = "" if kind == "failed" else " (error)"
                failing.append(("%s: %s%s" % (name, failure.group("description"), suffix))[:MAX_NAME])
            continue
        if logger == "odoo.tests.result":
            result = RESULT.match(message)
            if result:
                total = {k: int(v) for k, v in result.groupdict().items()}
                continue
        if logger == "odoo.tests.stats":
            stats = STATS.match(message)
            if stats:
                entry = module(stats.group("module"))
                entry["_stats"] = (entry["_stats"] or 0) + int(stats.group("n"))
                continue
        ran = RAN.match(message)
        # "Ran N tests" under the test file's logger, or under another one
        # (odoo.modules.module) with the test file's name first.
        addon = ADDON.match(ran.group("logger") or logger) if ran else None
        if addon:
            module(addon.group("module"))["_ran"] += int(ran.group("n"))
            continue
        if level in ("ERROR", "CRITICAL"):
            log_errors += 1

    for entry in modules.values():
        # Odoo's own per-module statistics, else the sum of the files' counts;
        # never fewer tests than failed or erred.
        counted = entry.pop("_stats")
        ran = entry.pop("_ran")
        entry["tests"] = max(counted if counted is not None else ran, entry["failed"] + entry["errors"])
        entry["passed"] = entry["tests"] - entry["failed"] - entry["errors"]
    tests = sum(e["tests"] for e in modules.values())
    if total is not None:
        failed, errors, tests = total["failed"], total["errors"], max(total["tests"], total["failed"] + total["errors"])
    return {"passed": tests - failed - errors, "failed": failed, "errors": errors, "tests": tests,
            "modules": modules, "failing": failing, "log_errors": log_errors,
            "summary_seen": total is not None}


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: odoo_test_log.py LOG")
    with open(argv[1], encoding="utf-8", errors="replace") as fh:
        print(json.dumps(parse(fh), sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
