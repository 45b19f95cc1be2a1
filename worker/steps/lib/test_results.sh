# shellcheck shell=bash
# Test results (sourced after common.sh): the part of an Odoo log written by
# an `odoo-bin --test-enable` run, read by lib/odoo_test_log.py into the
# run's result.tests (passed, failed, errors per module, the failing tests'
# names, what was tested, the tags and odoo-bin's exit code).

# tests_record LOG OFFSET TESTED TAGS CODE: records result.tests from LOG
# past byte OFFSET and prints the verdict: empty when the tests passed,
# else one line naming the first failing tests (or what else went wrong).
tests_record() {
  local log=$1 offset=$2 tested=$3 tags=$4 code=$5 summary
  summary=$(tail -c +"$((offset + 1))" "$log" | python3 "$STEPS_LIB/odoo_test_log.py" /dev/stdin) ||
    die "cannot read the test log $log"
  meta "$(python3 - "$summary" "$tested" "$tags" "$code" <<'PY'
import json, sys
summary, tested, tags, code = sys.argv[1:]
tests = json.loads(summary)
tests.update({"tested": tested, "tags": tags, "exit_code": int(code)})
print(json.dumps({"tests": tests}))
PY
)"
  python3 - "$summary" "$code" <<'PY'
import json, sys
t, code = json.loads(sys.argv[1]), sys.argv[2]
if t["failed"] or t["errors"]:
    names = "; ".join(t["failing"][:3]) + ("; ..." if len(t["failing"]) > 3 else "")
    print("%d failed, %d error(s) of %d tests: %s" % (t["failed"], t["errors"], t["tests"], names))
elif t["log_errors"]:
    print("%d error line(s) in the log outside the tests (a module did not install?)" % t["log_errors"])
elif code != "0":
    print("odoo-bin exited with code %s" % code)
PY
}

# tests_passed_line LOG OFFSET: "tests passed: P of K".
tests_passed_line() {
  tail -c +"$(($2 + 1))" "$1" | python3 "$STEPS_LIB/odoo_test_log.py" /dev/stdin |
    python3 -c 'import json, sys; t = json.load(sys.stdin); print("tests passed: %d of %d" % (t["passed"], t["tests"]))'
}
