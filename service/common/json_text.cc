#include "common/json_text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <system_error>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace gateway {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629, section 4), or 0.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  auto at = [&](size_t k) -> unsigned char {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
  };
  const unsigned char c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return IsContinuation(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;  // No overlong forms.
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;  // No UTF-16 surrogates.
    return at(1) >= lo && at(1) <= hi && IsContinuation(at(2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;  // Nothing above U+10FFFF.
    return at(1) >= lo && at(1) <= hi && IsContinuation(at(2)) && IsContinuation(at(3)) ? 4 : 0;
  }
  return 0;
}

// A cursor over JSON text: each Read/Skip consumes one token or value and returns false on
// anything RFC 8259 (and so nlohmann's parser) does not accept.
class JsonCursor {
 public:
  explicit JsonCursor(absl::string_view text) : text_(text) {
    // nlohmann skips a UTF-8 byte order mark at the start.
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;
  }

  void SkipSpace() {
    while (i_ < text_.size() &&
           (text_[i_] == ' ' || text_[i_] == '\t' || text_[i_] == '\n' || text_[i_] == '\r')) {
      ++i_;
    }
  }
  // nlohmann's lexer reads a NUL byte outside a string as the end of the input.
  bool AtEnd() const { return i_ == text_.size() || text_[i_] == '\0'; }
  // The next character, or '\0' at the end (which no valid token starts with).
  char Peek() const { return i_ < text_.size() ? text_[i_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++i_;
    return true;
  }

  // A string token. `*out` views the text when it has no escapes, else `*scratch`.
  bool ReadString(absl::string_view* out, std::string* scratch) {
    if (!Consume('"')) return false;
    const size_t start = i_;
    bool escaped = false;
    while (true) {
      if (i_ >= text_.size()) return false;
      const auto c = static_cast<unsigned char>(text_[i_]);
      if (c == '"') break;
      if (c < 0x20) return false;
      if (c == '\\') {
        if (!escaped) scratch->assign(text_.data() + start, i_ - start);
        escaped = true;
        if (!ReadEscape(scratch)) return false;
        continue;
      }
      size_t n = 1;
      if (c >= 0x80 && (n = Utf8SequenceLength(text_, i_)) == 0) return false;
      if (escaped) scratch->append(text_.data() + i_, n);
      i_ += n;
    }
    *out = escaped ? absl::string_view(*scratch) : text_.substr(start, i_ - start);
    ++i_;  // The closing quote.
    return true;
  }

  // Any value, checked and not kept. Iterative: nesting depth costs no stack.
  bool SkipValue() {
    absl::InlinedVector<char, 16> open;  // '{' or '[' for each container entered.
    std::string scratch;
    absl::string_view unused;
    while (true) {
      SkipSpace();
      const char c = Peek();
      if (c == '{' || c == '[') {
        ++i_;
        SkipSpace();
        if (!Consume(c == '{' ? '}' : ']')) {
          open.push_back(c);
          if (c == '{' && !ReadMemberName(&unused, &scratch)) return false;
          continue;
        }
        // Closed at once: an empty container is a whole value.
      } else if (c == '"') {
        if (!ReadString(&unused, &scratch)) return false;
      } else if (c == 't' || c == 'f' || c == 'n') {
        if (!SkipLiteral()) return false;
      } else if (!SkipNumber()) {
        return false;
      }
      // After a value: close containers or go on to the next element.
      while (true) {
        if (open.empty()) return true;
        SkipSpace();
        const char close = open.back() == '{' ? '}' : ']';
        if (Consume(close)) {
          open.pop_back();
          continue;
        }
        if (!Consume(',')) return false;
        if (open.back() == '{' && !ReadMemberName(&unused, &scratch)) return false;
        break;
      }
    }
  }

  // `"name"` and its colon, with the whitespace around them.
  bool ReadMemberName(absl::string_view* name, std::string* scratch) {
    SkipSpace();
    if (!ReadString(name, scratch)) return false;
    SkipSpace();
    return Consume(':');
  }

  bool SkipLiteral() {
    for (absl::string_view literal : {"true", "false", "null"}) {
      if (text_.substr(i_, literal.size()) == literal) {
        i_ += literal.size();
        return true;
      }
    }
    return false;
  }

 private:
  bool Digit() const { return Peek() >= '0' && Peek() <= '9'; }
  void SkipDigits() {
    while (Digit()) ++i_;
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and, like nlohmann, finite as a double when
  // it does not fit a 64-bit integer.
  bool SkipNumber() {
    const size_t start = i_;
    Consume('-');
    if (Consume('0')) {
      // No leading zeros.
    } else if (Digit()) {
      SkipDigits();
    } else {
      return false;
    }
    bool integer = true;
    if (Consume('.')) {
      if (!Digit()) return false;
      SkipDigits();
      integer = false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++i_;
      if (!Consume('+')) Consume('-');
      if (!Digit()) return false;
      SkipDigits();
      integer = false;
    }
    const absl::string_view number = text_.substr(start, i_ - start);
    // Up to 18 digits always fits; anything longer or not an integer is checked as nlohmann
    // does (strtod, then finite), from_chars first since it needs no copy.
    if (integer && number.size() <= 18) return true;
    double value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (error == std::errc()) return std::isfinite(value);
    // Out of range: overflow is an error, underflow (to zero) is not.
    const std::string copy(number);
    return std::isfinite(std::strtod(copy.c_str(), nullptr));
  }

  // After a backslash; appends what the escape stands for.
  bool ReadEscape(std::string* out) {
    ++i_;  // The backslash.
    const char c = Peek();
    ++i_;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out->push_back(c);
        return true;
      case 'b':
        out->push_back('\b');
        return true;
      case 'f':
        out->push_back('\f');
        return true;
      case 'n':
        out->push_back('\n');
        return true;
      case 'r':
        out->push_back('\r');
        return true;
      case 't':
        out->push_back('\t');
        return true;
      case 'u':
        break;
      default:
        return false;
    }
    uint32_t code = 0;
    if (!ReadHex4(&code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return false;  // A lone low surrogate.
    if (code >= 0xD800 && code <= 0xDBFF) {
      uint32_t low = 0;
      if (!Consume('\\') || !Consume('u') || !ReadHex4(&low) || low < 0xDC00 || low > 0xDFFF) {
        return false;
      }
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(code, out);
    return true;
  }

  bool ReadHex4(uint32_t* code) {
    for (int k = 0; k < 4; ++k) {
      const char c = Peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return false;
      }
      *code = *code << 4 | digit;
      ++i_;
    }
    return true;
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xC0 | code >> 6));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | code >> 12));
      out->push_back(static_cast<char>(0x80 | (code >> 6 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | code >> 18));
      out->push_back(static_cast<char>(0x80 | (code >> 12 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code >> 6 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  absl::string_view text_;
  size_t i_ = 0;
};

}  // namespace

absl::Status ReadJsonStrings(absl::string_view text, absl::Span<const JsonStringMember> members) {
  auto invalid = [] { return absl::InvalidArgumentError("is not valid JSON"); };
  JsonCursor json(text);
  json.SkipSpace();
  if (json.Peek() != '{') {
    // Valid JSON of another kind is told apart from text that is no JSON at all.
    if (!json.SkipValue()) return invalid();
    json.SkipSpace();
    return json.AtEnd() ? absl::InvalidArgumentError("is not a JSON object") : invalid();
  }
  // Named members that are not strings (bit k for members[k]): the last of a name counts.
  uint64_t wrong_type = 0;
  json.Consume('{');
  json.SkipSpace();
  if (!json.Consume('}')) {
    std::string name_scratch;
    std::string value_scratch;
    while (true) {
      absl::string_view name;
      if (!json.ReadMemberName(&name, &name_scratch)) return invalid();
      json.SkipSpace();
      size_t index = members.size();
      for (size_t k = 0; k < members.size() && k < 64; ++k) {
        if (members[k].name == name) index = k;
      }
      if (index == members.size()) {
        if (!json.SkipValue()) return invalid();
      } else if (json.Peek() == '"') {
        absl::string_view value;
        if (!json.ReadString(&value, &value_scratch)) return invalid();
        members[index].value->assign(value.data(), value.size());
        wrong_type &= ~(uint64_t{1} << index);
      } else if (json.Peek() == 'n') {
        if (!json.SkipLiteral()) return invalid();  // Only "null" starts with 'n'.
        members[index].value->clear();
        wrong_type &= ~(uint64_t{1} << index);
      } else {
        if (!json.SkipValue()) return invalid();
        wrong_type |= uint64_t{1} << index;
      }
      json.SkipSpace();
      if (json.Consume('}')) break;
      if (!json.Consume(',')) return invalid();
    }
  }
  json.SkipSpace();
  if (!json.AtEnd()) return invalid();
  for (size_t k = 0; k < members.size() && k < 64; ++k) {
    // The first named, as a caller reading the members in order would find it.
    if (wrong_type & uint64_t{1} << k) {
      return absl::InvalidArgumentError(
          absl::StrCat("property ", members[k].name, " is not a string"));
    }
  }
  return absl::OkStatus();
}

void AppendJsonString(std::string* out, absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t plain = 0;  // Start of the run of bytes copied as they are.
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(text.data() + plain, i - plain);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(text, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for each byte that starts no valid sequence.
        ++i;
      } else {
        out->append(text.data() + i, n);
        i += n;
      }
    } else {
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        default:
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
      }
      ++i;
    }
    plain = i;
  }
  out->append(text.data() + plain, text.size() - plain);
  out->push_back('"');
}

absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  // A continuation byte at the cut means the sequence it belongs to would be split; a valid
  // sequence has at most three of them.
  for (int k = 0; k < 3 && cut > 0 && IsContinuation(static_cast<unsigned char>(text[cut])); ++k) {
    --cut;
  }
  return text.substr(0, cut);
}

}  // namespace gateway
