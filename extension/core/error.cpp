#include "error.h"

namespace odooops {

const char* sqlstate(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidTransition:
      return "OD001";
    case ErrorCode::NotFound:
      return "OD002";
    case ErrorCode::StaleLease:
      return "OD003";
    case ErrorCode::InvalidArgument:
      return "OD004";
    case ErrorCode::ValueTooLong:
      return "OD005";
    case ErrorCode::IdempotencyMismatch:
      return "OD006";
    case ErrorCode::AgentNotEligible:
      return "OD007";
    case ErrorCode::CheckViolation:
      return "23514";
    case ErrorCode::InsufficientPrivilege:
      return "42501";
    case ErrorCode::Internal:
      break;
  }
  return "OD999";
}

}  // namespace odooops
