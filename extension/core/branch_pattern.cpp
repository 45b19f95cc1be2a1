#include "branch_pattern.h"

#include <array>
#include <cstdint>
#include <vector>

#include "error.h"
#include "validation.h"

namespace odooops {
namespace {

// The matcher is a bit-parallel simulation of the pattern's NFA (the
// Shift-And method), not a backtracking search: the previous recursive matcher
// took exponential time on patterns such as "*a*a*a*a*a*a*a*a*b" and
// recursed once per `**`, so a million stars overflowed the stack.
//
// The pattern compiles to tokens: a literal byte, `?` (one byte but '/'),
// `*` (any bytes but '/') or `**` (any bytes); a run of two or more stars is
// one `**` (`***` is `**` then `*`, which matches what `**` alone does).
// State j (0..T for T tokens) means "the first j tokens matched the branch
// read so far"; bit j of a bitset of T+1 bits holds it. For each branch byte
// c the next set is
//   ((D & advance[c]) << 1) | (D & stay[c])
// where advance[c] has the tokens that consume c and move on (the literal c,
// and `?` unless c is '/') and stay[c] the stars that consume c and stay (`**`,
// and `*` unless c is '/'), followed by the empty-match closure
// D |= (D & stars) << 1 (one step suffices: no two star tokens are adjacent).
// The branch matches when state T is set after its last byte.
//
// Bound: compiling is O(|pattern|); matching makes one pass over the
// ceil((T+1)/64) words of the state per branch byte, O(|branch| *
// |pattern| / 64) in all, whatever the pattern: no backtracking, no
// recursion, memory O(k * |pattern| / 64) for k distinct literal bytes. It
// is not linear in both lengths together, but both are capped at
// Limits::kBranchBytes (1020), so a call costs at most 1020 bytes x 16
// words, tens of microseconds (BENCHMARKS.md, "Branch patterns"). That is
// why the loops need no interrupt check: the backend's CHECK_FOR_INTERRUPTS
// runs between calls, and no call delays it noticeably.

using Word = std::uint64_t;
constexpr std::size_t kWordBits = 64;

class Bits {
 public:
  explicit Bits(std::size_t words) : w_(words, 0) {}
  std::size_t words() const { return w_.size(); }
  Word& operator[](std::size_t i) { return w_[i]; }
  Word operator[](std::size_t i) const { return w_[i]; }
  void set(std::size_t bit) { w_[bit / kWordBits] |= Word{1} << (bit % kWordBits); }
  bool test(std::size_t bit) const { return (w_[bit / kWordBits] >> (bit % kWordBits)) & 1; }

 private:
  std::vector<Word> w_;
};

struct Compiled {
  std::size_t tokens = 0;
  // Masks over token positions. `literal_row[c]` indexes `literals` (row 0
  // is empty, for bytes the pattern does not name).
  std::array<std::uint16_t, 256> literal_row{};
  std::vector<Bits> literals;
  Bits one{0}, star{0}, globstar{0}, stars{0};
};

Compiled compile(std::string_view pattern) {
  // Token kinds in pattern order; a literal keeps its byte.
  enum Kind : unsigned char { kLiteral, kOne, kStar, kGlobStar };
  std::vector<std::pair<Kind, unsigned char>> tokens;
  tokens.reserve(pattern.size());
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '*') {
      std::size_t run = 0;
      while (i < pattern.size() && pattern[i] == '*') {
        ++run;
        ++i;
      }
      tokens.emplace_back(run == 1 ? kStar : kGlobStar, 0);
      continue;
    }
    if (pattern[i] == '?') {
      tokens.emplace_back(kOne, 0);
    } else {
      tokens.emplace_back(kLiteral, static_cast<unsigned char>(pattern[i]));
    }
    ++i;
  }

  Compiled c;
  c.tokens = tokens.size();
  const std::size_t words = (tokens.size() + 1 + kWordBits - 1) / kWordBits;
  c.one = c.star = c.globstar = c.stars = Bits(words);
  c.literals.emplace_back(words);
  for (std::size_t j = 0; j < tokens.size(); ++j) {
    const auto [kind, byte] = tokens[j];
    switch (kind) {
      case kLiteral:
        if (c.literal_row[byte] == 0) {
          c.literal_row[byte] = static_cast<std::uint16_t>(c.literals.size());
          c.literals.emplace_back(words);
        }
        c.literals[c.literal_row[byte]].set(j);
        break;
      case kOne:
        c.one.set(j);
        break;
      case kStar:
        c.star.set(j);
        c.stars.set(j);
        break;
      case kGlobStar:
        c.globstar.set(j);
        c.stars.set(j);
        break;
    }
  }
  return c;
}

void check_size(const char* field, std::string_view value) {
  if (value.size() > Limits::kBranchBytes) {
    throw Error(ErrorCode::ValueTooLong, std::string(field) + " is too long",
                std::to_string(value.size()) + " bytes, the limit is " +
                    std::to_string(Limits::kBranchBytes) + ".");
  }
}

}  // namespace

bool branch_matches(std::string_view pattern, std::string_view branch) {
  check_size("pattern", pattern);
  check_size("branch", branch);
  if (pattern.empty() || branch.empty()) return false;

  const Compiled c = compile(pattern);
  const std::size_t words = c.one.words();
  Bits d(words), next(words);
  d.set(0);
  if (c.stars.test(0)) d.set(1);  // the empty-match closure of state 0
  for (const char ch : branch) {
    const auto byte = static_cast<unsigned char>(ch);
    const Word not_slash = byte == '/' ? 0 : ~Word{0};
    const Bits& literal = c.literals[c.literal_row[byte]];
    // One pass over the words: advance (shifted, carrying bit 63 into the
    // next word), stay, then the closure over stars (shifted likewise; its
    // new bits are never stars, so one step is the whole closure).
    Word advance_carry = 0, closure_carry = 0, any = 0;
    for (std::size_t i = 0; i < words; ++i) {
      const Word advanced = d[i] & (literal[i] | (c.one[i] & not_slash));
      Word n = (advanced << 1) | advance_carry;
      advance_carry = advanced >> (kWordBits - 1);
      n |= d[i] & (c.globstar[i] | (c.star[i] & not_slash));
      const Word empty = n & c.stars[i];
      n |= (empty << 1) | closure_carry;
      closure_carry = empty >> (kWordBits - 1);
      next[i] = n;
      any |= n;
    }
    std::swap(d, next);
    if (any == 0) return false;
  }
  return d.test(c.tokens);
}

}  // namespace odooops
