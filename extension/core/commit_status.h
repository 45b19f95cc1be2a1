// Commit statuses sent back to the git hosts: the one place that knows each
// host's status API (docs/git-hosts.md, "Commit statuses"). A run event of a
// run with a git_sha becomes a status of that commit:
//
//  github     POST <api>/repos/<owner>/<repo>/statuses/<sha>
//             Authorization: Bearer <token>; {state, context, description, target_url}
//  gitlab     POST <api>/projects/<url-encoded path>/statuses/<sha>
//             PRIVATE-TOKEN: <token>; {state, name, description, target_url}
//  gitea      POST <api>/repos/<owner>/<repo>/statuses/<sha> (Gitea and Forgejo)
//             Authorization: token <token>; {state, context, description, target_url}
//  bitbucket  POST <api>/repositories/<workspace>/<repo>/commit/<sha>/statuses/build
//             Authorization: Bearer <token>; {key, name, state, description, url}
//
// <api> is the subscription's URL (https://api.github.com,
// https://gitlab.com/api/v4, https://gitea.example/api/v1,
// https://api.bitbucket.org/2.0); the repository is the project's
// repo_full_name (GitHub) or its repository on that host (envelope
// project.git_hosts). Pure C++ (nlohmann/json).
#pragma once

#include <string>

#include "webhook_payload.h"

namespace odooops {

// Whether `format` is one of the hosts above.
bool is_commit_status_format(const std::string& format);

// The request of a commit status; PermanentDeliveryError for an event that
// is not a run's, or a run without commit or repository.
HttpRequest render_commit_status(const OutboundDelivery& delivery);

// The state a host names a run event by: queued and started runs are
// pending (GitLab: running once started), then success, failure or
// cancelled in each host's words.
std::string commit_status_state(const std::string& format, const std::string& event_type,
                                const std::string& run_status);

}  // namespace odooops
