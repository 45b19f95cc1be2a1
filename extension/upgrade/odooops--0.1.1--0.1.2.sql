-- odooops 0.1.1 -> 0.1.2 (unreleased; see CHANGELOG.md).
\echo Use "ALTER EXTENSION odooops UPDATE TO '0.1.2'" to load this file. \quit

-- ---------------------------------------------------------------- run queue

-- ---------------------------------------------------------------- pipeline
