#include <gtest/gtest.h>

#include <set>
#include <string>

#include "branch_slug.h"

namespace odooops {
namespace {

TEST(FoldToAscii, LatinLettersLoseTheirDiacritics) {
  EXPECT_EQ(fold_to_ascii("feature/\xC3\xA9t\xC3\xA9"), "feature/ete");  // été
  EXPECT_EQ(fold_to_ascii("\xC3\x89T\xC3\x89"), "ete");                  // ÉTÉ
  EXPECT_EQ(fold_to_ascii("Stra\xC3\x9F"
                          "e"),
            "strasse");  // Straße
  EXPECT_EQ(fold_to_ascii("\xC5\x92uvre-\xC5\x81\xC3\xB3"
                          "d\xC5\xBA"),
            "oeuvre-lodz");  // Œuvre-Łódź
  EXPECT_EQ(fold_to_ascii("\xC3\x86r\xC3\xB8"
                          "e"),
            "aeroe");  // Ærøe
  EXPECT_EQ(fold_to_ascii("\xC8\x98"
                          "a\xC8\x9B"),
            "sat");  // Șaț
  EXPECT_EQ(fold_to_ascii("\xC3\x9E"
                          "orn"),
            "thorn");  // Þorn
}

TEST(FoldToAscii, CombiningMarksAreDropped) {
  // Decomposed é (e + U+0301) folds as the precomposed one does.
  EXPECT_EQ(fold_to_ascii("e\xCC\x81t\xCC\x81"
                          "e\xCC\x81"),
            "ete");
}

TEST(FoldToAscii, OtherCharactersBecomeSpaces) {
  EXPECT_EQ(fold_to_ascii("a\xC3\x97"
                          "b"),
            "a b");                                            // ×
  EXPECT_EQ(fold_to_ascii("\xE6\x97\xA5\xE6\x9C\xAC"), "  ");  // 日本
  EXPECT_EQ(fold_to_ascii("fix/\xF0\x9F\x9A\x80"), "fix/ ");   // rocket emoji
  EXPECT_EQ(fold_to_ascii("\xD0\x96"), " ");                   // Cyrillic
}

TEST(FoldToAscii, MalformedUtf8IsOneSpacePerByte) {
  EXPECT_EQ(fold_to_ascii("a\xFF"
                          "b"),
            "a b");
  EXPECT_EQ(fold_to_ascii("a\xC3"), "a ");               // truncated
  EXPECT_EQ(fold_to_ascii("\xC0\xAF"), "  ");            // overlong '/'
  EXPECT_EQ(fold_to_ascii("\xED\xA0\x80"), "   ");       // surrogate
  EXPECT_EQ(fold_to_ascii("\xF4\x90\x80\x80"), "    ");  // above U+10FFFF
  EXPECT_EQ(fold_to_ascii("\xC3"
                          "A"),
            " a");  // lead byte without continuation
}

TEST(Sha256HexPrefix, KnownDigests) {
  // printf %s abc | sha256sum
  EXPECT_EQ(sha256_hex_prefix("abc", 64),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex_prefix("abc", 8), "ba7816bf");
  EXPECT_EQ(sha256_hex_prefix("abc", 7), "ba7816b");
  EXPECT_EQ(sha256_hex_prefix("", 8), "e3b0c442");
}

TEST(BranchSlug, ReadableAndLowercase) {
  EXPECT_EQ(branch_slug("feature/Login_Page", 40), "feature-login-page");
  EXPECT_EQ(branch_slug("--Fix//double--", 40), "fix-double");
  EXPECT_EQ(branch_slug("feature/\xC3\xA9t\xC3\xA9", 40), "feature-ete");
  EXPECT_EQ(branch_slug("feature/e\xCC\x81t\xCC\x81"
                        "e\xCC\x81",
                        40),
            "feature-ete");
  EXPECT_EQ(branch_slug("fix/\xF0\x9F\x9A\x80-rocket", 40), "fix-rocket");
  EXPECT_EQ(branch_slug("///", 40), "branch");
  EXPECT_EQ(branch_slug("\xE6\x97\xA5\xE6\x9C\xAC", 40), "branch");
  EXPECT_EQ(branch_slug("", 40), "branch");
}

TEST(BranchSlug, HashedOnRequest) {
  // printf %s feature/ete | sha256sum
  EXPECT_EQ(branch_slug("feature/ete", 40, true), "feature-ete-7709e369");
  // The hash is of the full branch name, not of its slug.
  EXPECT_EQ(branch_slug("feature/\xC3\xA9t\xC3\xA9", 40, true), "feature-ete-3d3a9540");
  EXPECT_EQ(branch_slug("feature/ete", 10, true), "f-7709e369");
  EXPECT_EQ(branch_slug("///", 40, true).substr(0, 7), "branch-");
}

TEST(BranchSlug, LongNamesAreCutAndHashed) {
  const std::string base = "feature/a-very-long-branch-name-number-";
  const std::string a = branch_slug(base + "one", 20);
  const std::string b = branch_slug(base + "two", 20);
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a.substr(0, 11), "feature-a-v");
  EXPECT_NE(a, b);
  // A cut that ends on a separator does not leave "--".
  EXPECT_EQ(branch_slug("abcdefghi-jklmnopqrstuvwxyz", 19).find("--"), std::string::npos);
  EXPECT_EQ(branch_slug(std::string(40, 'x'), 40), std::string(40, 'x'));
  EXPECT_EQ(branch_slug(std::string(41, 'x'), 40).size(), 40u);
}

TEST(BranchSlug, AlwaysValidAndBounded) {
  std::set<std::string> seen;
  const char* const pieces[] = {"feature/", "\xC3\xA9",         "X",   "-", "_",
                                "9",        "\xF0\x9F\x9A\x80", "\xFF"};
  for (std::size_t length = 10; length <= 63; length += 7) {
    for (const char* a : pieces) {
      for (const char* b : pieces) {
        for (bool hashed : {false, true}) {
          const std::string branch = std::string(a) + b + std::string(length, 'q') + a;
          const std::string slug = branch_slug(branch, length, hashed);
          EXPECT_LE(slug.size(), length) << branch;
          EXPECT_FALSE(slug.empty());
          EXPECT_NE(slug.front(), '-');
          EXPECT_NE(slug.back(), '-');
          EXPECT_EQ(slug.find("--"), std::string::npos) << slug;
          for (char c : slug) {
            EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') << slug;
          }
          if (hashed) seen.insert(slug);
        }
      }
    }
  }
  EXPECT_GT(seen.size(), 1u);
}

TEST(BranchSlug, RefusesTooShortALimit) {
  EXPECT_THROW(branch_slug("feature/x", kMinSlugLength - 1), std::invalid_argument);
  EXPECT_NO_THROW(branch_slug("feature/x", kMinSlugLength, true));
}

}  // namespace
}  // namespace odooops
