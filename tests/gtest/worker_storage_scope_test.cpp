// Storage locations the worker reads or writes (worker/storage_scope.h).
#include "storage_scope.h"

#include <gtest/gtest.h>

#include <utility>

using namespace odooops::worker;

TEST(StorageScope, KeysUnderTheRootAndTheProject) {
  EXPECT_EQ(
      storage_scoped_key("file:///srv/st", "file:///srv/st/backups/shop/prod/x/db.dump", "shop"),
      "backups/shop/prod/x/db.dump");
  EXPECT_EQ(
      storage_scoped_key("file:///srv/st/", "file:///srv/st/artifacts/shop/run-1/a.log", "shop"),
      "artifacts/shop/run-1/a.log");
  EXPECT_EQ(storage_scoped_key("s3://bk/pre", "s3://bk/pre/backups/shop/x/db.dump", "shop"),
            "backups/shop/x/db.dump");
  EXPECT_EQ(storage_scoped_key("s3://bk", "s3://bk/backups/shop/x", "shop"), "backups/shop/x");
  // Without a project (the operator's own use), anything under the root.
  EXPECT_EQ(storage_scoped_key("file:///srv/st", "file:///srv/st/other", ""), "other");
  // A listing prefix may end with a slash.
  EXPECT_EQ(storage_scoped_key("file:///srv/st", "file:///srv/st/backups/shop/", "shop", true),
            "backups/shop/");
}

TEST(StorageScope, RefusesEverythingElse) {
  const char* bad[] = {
      "file:///etc/passwd",
      "file:///srv/stx/backups/shop/x",
      "file:///srv/st/backups/shop/../../../etc/passwd",
      "file:///srv/st/backups/shop/./x",
      "file:///srv/st//backups/shop/x",
      "file:///srv/st/backups/other/x",
      "file:///srv/st/backups/shop",
      "file:///srv/st/backups/shop/",
      "file:///srv/st/releases/shop/x",
      "file://host/srv/st/backups/shop/x",
      "file:///srv/st/backups/shop/x\\..\\y",
      "file:///srv/st/backups/shop/x\ny",
      "s3://bk/backups/shop/x",
      "http://example.com/srv/st/backups/shop/x",
      "/srv/st/backups/shop/x",
      "",
  };
  for (const char* url : bad)
    EXPECT_THROW(storage_scoped_key("file:///srv/st", url, "shop"), StorageScopeError) << url;
  EXPECT_THROW(storage_scoped_key("s3://bk/pre", "s3://other/pre/backups/shop/x", "shop"),
               StorageScopeError);
  EXPECT_THROW(storage_scoped_key("s3://bk/pre", "s3://bk/backups/shop/x", "shop"),
               StorageScopeError);
  EXPECT_THROW(storage_scoped_key("s3://bk/pre", "file:///pre/backups/shop/x", "shop"),
               StorageScopeError);
  // No root configured: nothing is read or written.
  EXPECT_THROW(storage_scoped_key("", "file:///srv/st/backups/shop/x", "shop"), StorageScopeError);
}

TEST(StorageScope, DeletesOnlyInTheAreaOfTheObjectKind) {
  EXPECT_NO_THROW(check_deletion_key("backup", "backups/shop/production/x/db.dump"));
  EXPECT_NO_THROW(check_deletion_key("filestore", "backups/shop/production/x/filestore.tar"));
  EXPECT_NO_THROW(check_deletion_key("artifact", "artifacts/shop/run-5/tests.log"));
  const std::pair<const char*, const char*> bad[] = {
      {"backup", "artifacts/shop/run-5/tests.log"},
      {"filestore", "other/shop/x"},
      {"artifact", "backups/shop/production/x/db.dump"},
      {"artifact", "artifacts/shop"},
      {"artifact", "artifacts/shop/"},
      {"artifact", "artifacts/"},
      {"backup", "backups"},
      {"backup", ""},
      {"backup", "backups/shop/x/"},
      {"release", "backups/shop/x"},
  };
  for (const auto& [kind, key] : bad)
    EXPECT_THROW(check_deletion_key(kind, key), StorageScopeError) << kind << " " << key;
}
