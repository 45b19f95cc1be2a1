// Environment and database names derived from git branch names.
//
// A development environment is named after its branch (dev-<slug>) and so
// is its database. Slugs must be readable, lowercase [a-z0-9-], bounded,
// and the same for the same branch every time; names that would collide
// are told apart by a hash of the full branch name (docs/github.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace odooops {

// The hex digits of the slug hash: short enough to keep names readable,
// long enough that two branches of one project share it by accident with a
// chance of 1 in 4 billion.
inline constexpr std::size_t kSlugHashDigits = 8;

// The shortest max_length branch_slug accepts: one character, '-' and the
// hash.
inline constexpr std::size_t kMinSlugLength = kSlugHashDigits + 2;

// `utf8` spelled in lowercase ASCII for a slug: ASCII letters are lowered,
// Latin letters lose their diacritics (é → e, ł → l, ß → ss, Œ → oe),
// combining marks (decomposed input, as macOS file names have) are dropped,
// and every other character, or byte that is not UTF-8, becomes a space.
std::string fold_to_ascii(std::string_view utf8);

// The first `digits` (at most 64) lowercase hex digits of the SHA-256 of
// `text`.
std::string sha256_hex_prefix(std::string_view text, std::size_t digits);

// The slug of a branch name: fold_to_ascii, then every run of characters
// other than [a-z0-9] becomes one '-', with none at either end ("branch"
// when nothing is left). When that is longer than max_length, or when
// `hashed` is set (the plain slug belongs to another branch), it is cut to
// leave room for '-' and the first kSlugHashDigits hex digits of the
// SHA-256 of the full branch name. max_length must be at least
// kMinSlugLength.
std::string branch_slug(std::string_view branch, std::size_t max_length, bool hashed = false);

}  // namespace odooops
