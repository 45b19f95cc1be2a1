// `odooops-worker notifications CHANNEL [--run ID]`: prints the payload of
// every notification on CHANNEL, one per line, for shell scripts that cannot
// wait on a LISTEN themselves (`odooops logs --follow`). With --run the
// session follows run ID (ops.follow_run_events), whose events notify
// odooops_run_events only while someone follows it.
#pragma once

namespace odooops::worker {

// Connects with $ODOOOPS_DSN (else libpq's PG* variables), LISTENs on
// argv[0] (and follows the run of `--run ID`), prints "listening" once both
// hold, then each payload as it arrives (line breaks replaced by spaces),
// flushed. Returns 0 when its output is closed, 64 on bad arguments, 66 when
// the run is missing or not readable, 69 when the connection fails or is
// lost.
int notifications_command(int argc, char** argv);

}  // namespace odooops::worker
