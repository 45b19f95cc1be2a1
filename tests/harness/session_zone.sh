#!/usr/bin/env bash
# pg_regress launcher: runs psql with the session TimeZone given by
# ODOOOPS_TEST_TZ (pg_regress itself would force America/Los_Angeles).
exec env PGTZ="${ODOOOPS_TEST_TZ:?ODOOOPS_TEST_TZ names the session TimeZone}" "$@"
