// Whole-file reads for the small files the gateway watches (credentials, tokens, policy).
#ifndef GATEWAY_COMMON_FILE_H_
#define GATEWAY_COMMON_FILE_H_

#include <optional>
#include <string>

namespace gateway {

// The file's bytes, or std::nullopt when it cannot be opened.
std::optional<std::string> ReadFile(const std::string& path);

}  // namespace gateway

#endif  // GATEWAY_COMMON_FILE_H_
