// When the worker's disk counts as full (worker/disk.h).
#include "disk.h"

#include <gtest/gtest.h>

using namespace odooops::worker;

namespace {
constexpr unsigned long long MiB = 1ULL << 20, GiB = 1ULL << 30;
}

TEST(WorkerDisk, SmallerOfBytesAndPercent) {
  // 20 MiB volume, defaults 1 GiB / 5 %: the threshold is 1 MiB.
  EXPECT_FALSE(disk_short({20 * MiB, 2 * MiB}, GiB, 5));
  EXPECT_TRUE(disk_short({20 * MiB, MiB - 1}, GiB, 5));
  EXPECT_TRUE(disk_short({20 * MiB, 0}, GiB, 5));
  // 1 TiB volume: 5 % would be 51 GiB; 1 GiB is the threshold.
  EXPECT_FALSE(disk_short({1024 * GiB, 2 * GiB}, GiB, 5));
  EXPECT_TRUE(disk_short({1024 * GiB, GiB - 1}, GiB, 5));
  // Either at zero: never short.
  EXPECT_FALSE(disk_short({20 * MiB, 0}, 0, 5));
  EXPECT_FALSE(disk_short({20 * MiB, 0}, GiB, 0));
}

TEST(WorkerDisk, ReadsARealDirectory) {
  const auto space = disk_space("/tmp");
  ASSERT_TRUE(space.has_value());
  EXPECT_GT(space->total_bytes, 0u);
  EXPECT_LE(space->available_bytes, space->total_bytes);
  EXPECT_FALSE(disk_space("/nonexistent/odooops").has_value());
  EXPECT_EQ(describe_space({20 * MiB, 3 * MiB}), "3.0 MiB free of 20.0 MiB");
}
