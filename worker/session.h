// `odooops-worker [OPTIONS] session [TOKEN] [--] [ARGS...]`: one interactive
// session of an environment, opened by a person with ops.open_session
// (`odooops shell`, `odooops psql`, `odooops odoo-logs`) and run here, on
// the environment's host, with this worker's identity and configuration.
#pragma once

#include "config.h"

namespace odooops::worker {

// Redeems the token (argv[0], else $ODOOOPS_SESSION_TOKEN) with
// ops.redeem_session, runs `<steps>/lib/runtime.sh shell|psql|logs` (the
// verb is the session's kind, as opened) with the variables a step of the
// environment gets, stdin, stdout and stderr attached, then records the
// end with ops.close_session. ARGS: psql's arguments for a psql session,
// `--follow` and `--grep RE` for a log session, none for a shell. Returns
// the session's exit status, or a sysexits code when it could not start:
// 64 usage, 65 refused (used or expired token), 66 unknown token, 69 no
// control plane, 70 internal, 77 not allowed (a login or host that may
// not run it), 78 a runtime this worker does not allow.
int session_command(int argc, char** argv, const Config& cfg);

}  // namespace odooops::worker
