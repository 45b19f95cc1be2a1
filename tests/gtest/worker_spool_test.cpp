// The output spool of a run attempt (worker/spool.h): its file format, a
// torn last line, order across the disk and memory, removal.
#include "spool.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace odooops::worker;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/odooops-spool-test.XXXXXX";
  return mkdtemp(tmpl);
}

std::string event(int seq) {
  return R"({"level":"info","message":"line )" + std::to_string(seq) + R"(","seq":)" +
         std::to_string(seq) + "}";
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST(WorkerSpool, WholeLinesLeaveATornTail) {
  std::size_t consumed = 0;
  auto lines = whole_lines("a\nbb\nccc", 10, 1000, consumed);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "a");
  EXPECT_EQ(lines[1], "bb");
  EXPECT_EQ(consumed, 5u);
  lines = whole_lines("no newline yet", 10, 1000, consumed);
  EXPECT_TRUE(lines.empty());
  EXPECT_EQ(consumed, 0u);
  lines = whole_lines("", 10, 1000, consumed);
  EXPECT_TRUE(lines.empty());
}

TEST(WorkerSpool, WholeLinesLimits) {
  std::size_t consumed = 0;
  auto lines = whole_lines("a\nb\nc\n", 2, 1000, consumed);
  EXPECT_EQ(lines.size(), 2u);
  EXPECT_EQ(consumed, 4u);
  // Bytes: past the first line, stop before going over.
  lines = whole_lines("aaaa\nbbbb\ncccc\n", 10, 9, consumed);
  EXPECT_EQ(lines.size(), 2u);
  // A first line longer than the limit still goes (alone).
  lines = whole_lines("aaaaaaaaaaaa\nb\n", 10, 4, consumed);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(consumed, 13u);
}

TEST(WorkerSpool, SequenceNumberOfALine) {
  EXPECT_EQ(spooled_seq(event(42)), 42);
  EXPECT_EQ(spooled_seq(R"({"level":"info","message":"x"})"), 0);
  EXPECT_EQ(spooled_seq("{torn"), 0);
  EXPECT_EQ(spooled_seq(R"({"seq":"7"})"), 0);
}

TEST(WorkerSpool, FileHoldsOneEventPerLineUntilConsumed) {
  const std::string dir = temp_dir();
  const std::string path = spool_path(dir, 7, 2);
  EXPECT_NE(path.find("/spool/run-7-a2." + std::to_string(getpid()) + ".events"),
            std::string::npos);
  {
    Spool spool(path);
    ASSERT_EQ(spool.open_error(), 0);
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(stat((dir + "/spool").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(spool.empty());
    int err = 0;
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(spool.append(event(i), err));
    EXPECT_EQ(file_text(path), event(1) + "\n" + event(2) + "\n" + event(3) + "\n" + event(4) +
                                   "\n" + event(5) + "\n");
    EXPECT_EQ(spool.pending(), 5u);
    auto batch = spool.peek(3, 1 << 20);
    ASSERT_EQ(batch.size(), 3u);
    EXPECT_EQ(batch[0], event(1));
    // Not consumed: the same batch again (a call that failed).
    EXPECT_EQ(spool.peek(3, 1 << 20), batch);
    spool.peek(3, 1 << 20);
    spool.consume(2);
    batch = spool.peek(10, 1 << 20);
    ASSERT_EQ(batch.size(), 3u);
    EXPECT_EQ(spooled_seq(batch[0]), 3);
    EXPECT_EQ(spooled_seq(batch[2]), 5);
    spool.consume(3);
    EXPECT_TRUE(spool.empty());
    EXPECT_EQ(spool.pending(), 0u);
  }
  EXPECT_FALSE(fs::exists(path));  // removed with the run
  fs::remove_all(dir);
}

TEST(WorkerSpool, WithoutADiskLinesStayInMemoryInOrder) {
  const std::string dir = temp_dir();
  // A directory that cannot be created (a file is in the way).
  std::ofstream(dir + "/spool") << "x";
  Spool spool(spool_path(dir, 1, 1));
  EXPECT_NE(spool.open_error(), 0);
  int err = 0;
  EXPECT_FALSE(spool.append(event(1), err));
  EXPECT_NE(err, 0);
  EXPECT_FALSE(spool.append(event(2), err));
  auto batch = spool.peek(10, 1 << 20);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(spooled_seq(batch[0]), 1);
  EXPECT_EQ(spooled_seq(batch[1]), 2);
  spool.consume(1);
  batch = spool.peek(10, 1 << 20);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(spooled_seq(batch[0]), 2);
  spool.consume(1);
  EXPECT_TRUE(spool.empty());
  fs::remove_all(dir);
}

TEST(WorkerSpool, DiskFullKeepsWholeLinesAndOrder) {
  // A file-size limit stands in for a full disk: writes past it fail
  // (EFBIG) part-way through a line.
  const std::string dir = temp_dir();
  const std::string path = spool_path(dir, 3, 1);
  const std::size_t line = event(1).size() + 1;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {static_cast<rlim_t>(line * 2 + line / 2),
                         static_cast<rlim_t>(line * 2 + line / 2)};
    setrlimit(RLIMIT_FSIZE, &lim);
    Spool spool(path);
    int err = 0;
    if (!spool.append(event(1), err) || !spool.append(event(2), err)) _exit(10);
    if (spool.append(event(3), err) || err != EFBIG || spool.append(event(4), err)) _exit(11);
    // On disk: exactly the two whole lines; 3 and 4 in memory, after them.
    if (file_text(path) != event(1) + "\n" + event(2) + "\n") _exit(12);
    auto batch = spool.peek(10, 1 << 20);  // disk first, then memory
    if (batch.size() != 4 || spooled_seq(batch[1]) != 2 || spooled_seq(batch[2]) != 3) _exit(13);
    spool.peek(2, 1 << 20);
    spool.consume(2);
    batch = spool.peek(10, 1 << 20);
    if (batch.size() != 2 || spooled_seq(batch[0]) != 3 || spooled_seq(batch[1]) != 4) _exit(14);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 writes, 11 the refusal, 12 the file, 13-14 the order";
  fs::remove_all(dir);
}

TEST(WorkerSpool, PruneRemovesOnlySpoolsOfGoneProcesses) {
  const std::string dir = temp_dir();
  fs::create_directories(dir + "/spool");
  const std::string mine = spool_path(dir, 1, 1);
  std::ofstream(mine) << event(1) << "\n";
  // A process that is gone: a child that exited and was reaped.
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  const std::string gone = dir + "/spool/run-2-a1." + std::to_string(pid) + ".events";
  std::ofstream(gone) << event(1) << "\n";
  const std::string other = dir + "/spool/notes.txt";
  std::ofstream(other) << "x";
  prune_spools(dir);
  EXPECT_TRUE(fs::exists(mine));
  EXPECT_FALSE(fs::exists(gone));
  EXPECT_TRUE(fs::exists(other));
  fs::remove_all(dir);
}
