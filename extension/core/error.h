// Errors raised by odooops logic, each with an SQLSTATE of odooops's own.
//
// Pure C++: nothing here may include postgres.h. The PostgreSQL boundary
// (extension/pg/boundary.cpp) turns an Error into ereport(ERROR) once all
// C++ scopes have been left.
#pragma once

#include <stdexcept>
#include <string>

namespace odooops {

// The class "OD" is outside the ranges the SQL standard and PostgreSQL use.
// docs/errors.md documents every code; keep the two in step.
enum class ErrorCode {
  InvalidTransition,      // OD001: the run is not in a state that allows this
  NotFound,               // OD002: unknown project, environment, run, agent, ...
  StaleLease,             // OD003: fencing: the caller no longer holds the run
  InvalidArgument,        // OD004: malformed or out-of-range input
  ValueTooLong,           // OD005: message, payload or batch over its limit
  IdempotencyMismatch,    // OD006: idempotency key reused for a different run
  AgentNotEligible,       // OD007: the worker is disabled or may not claim
  CheckViolation,         // 23514 (PostgreSQL's own): a row breaks its table's invariants
  InsufficientPrivilege,  // 42501 (PostgreSQL's own): the caller may not do this
  Internal,               // OD999: a bug in odooops; please report it
};

// The five-character SQLSTATE of a code, e.g. "OD001".
const char* sqlstate(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, std::string detail = {}, std::string hint = {})
      : std::runtime_error(message),
        code_(code),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}

  ErrorCode code() const noexcept { return code_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  ErrorCode code_;
  std::string detail_;
  std::string hint_;
};

}  // namespace odooops
