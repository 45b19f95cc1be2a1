// Where the worker may read and write in storage: under the configured
// storage root and, for a run's project, under that project's areas
// (backups/<project>/, artifacts/<project>/). A backup location recorded in
// the database is only data: whoever wrote it, the worker refuses to read or
// write outside these bounds. Pure (no I/O); for file:// the caller also
// checks the location once symlinks are resolved. Unit-tested in
// tests/gtest/worker_storage_scope_test.cpp.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace odooops::worker {

struct StorageScopeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The key of `url` below `root` ("backups/shop/prod/x/db.dump"). `root` is
// file:///dir or s3://bucket[/prefix]; `url` must have the same scheme (and
// bucket), no empty, "." or ".." segment, no control character or
// backslash, and lie strictly below the root. With a `project`, the key
// must lie under backups/<project>/ or artifacts/<project>/. A trailing
// slash is allowed when `prefix` (a listing prefix, not an object).
// Throws StorageScopeError naming the reason.
std::string storage_scoped_key(std::string_view root, std::string_view url,
                               std::string_view project, bool prefix = false);

// Whether the worker may delete the object at `key` (storage_scoped_key's
// answer) as an expired object of `object_kind`: a backup's dump or
// filestore archive lies under backups/<project>/, an artifact under
// artifacts/<project>/, never an area itself. Throws StorageScopeError.
void check_deletion_key(std::string_view object_kind, std::string_view key);

}  // namespace odooops::worker
