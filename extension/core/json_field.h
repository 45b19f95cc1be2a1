// Reading one field of a JSON object as text, the way the webhook payloads
// and commit statuses quote run data: a string as it is, a missing or null
// field as "", anything else as its JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace odooops {

inline std::string json_field_text(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

}  // namespace odooops
