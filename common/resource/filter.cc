// Recursive-descent parser for the AIP-160 subset, emitting SQL as it parses.
#include "absl/strings/string_view.h"
#include "common/resource/filter.h"

#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/resource/reflection.h"
#include "common/status.h"
#include "common/utf8.h"

namespace kp::resource {
namespace {

enum class Tok { kEnd, kLParen, kRParen, kOp, kString, kWord, kAnd, kOr, kNot, kMinus };

struct Token {
  Tok type;
  std::string text;  // operator, word, or the unescaped string literal
  size_t pos;        // 1-based column in the filter
};

class Parser {
 public:
  Parser(absl::string_view input, const Catalog& catalog) : in_(input), catalog_(catalog) {}

  absl::StatusOr<SqlFragment> Run() {
    if (in_.size() > kMaxFilterLength) {
      return InvalidField("filter", absl::StrCat("is longer than ", kMaxFilterLength, " characters"));
    }
    RETURN_IF_ERROR(Lex());
    if (tokens_.size() == 1) return SqlFragment{};  // only kEnd: empty filter
    ASSIGN_OR_RETURN(std::string sql, ParseOr(0));
    if (Peek().type != Tok::kEnd) return Error(Peek().pos, absl::StrCat("unexpected '", Peek().text, "'"));
    return SqlFragment{std::move(sql), std::move(params_)};
  }

 private:
  // `pos` is 1-based in bytes; callers are told the character position.
  absl::Status Error(size_t pos, std::string what) {
    return InvalidField("filter", absl::StrCat("at position ", utf8::Column(in_, pos - 1), ": ", what));
  }

  absl::Status Lex() {
    size_t i = 0;
    while (i < in_.size()) {
      const char c = in_[i];
      const size_t pos = i + 1;
      if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
      if (c == '(') { tokens_.push_back({Tok::kLParen, "(", pos}); ++i; continue; }
      if (c == ')') { tokens_.push_back({Tok::kRParen, ")", pos}); ++i; continue; }
      if (c == '"') {
        std::string value;
        ++i;
        bool closed = false;
        while (i < in_.size()) {
          if (in_[i] == '\\' && i + 1 < in_.size()) { value.push_back(in_[i + 1]); i += 2; continue; }
          if (in_[i] == '"') { closed = true; ++i; break; }
          value.push_back(in_[i++]);
        }
        if (!closed) return Error(pos, "unterminated string literal");
        tokens_.push_back({Tok::kString, std::move(value), pos});
        continue;
      }
      if (c == '=' || c == ':') { tokens_.push_back({Tok::kOp, std::string(1, c), pos}); ++i; continue; }
      if (c == '!' || c == '<' || c == '>') {
        if (i + 1 < in_.size() && in_[i + 1] == '=') {
          tokens_.push_back({Tok::kOp, std::string(in_.substr(i, 2)), pos});
          i += 2;
          continue;
        }
        if (c == '!') return Error(pos, "'!' must be followed by '='");
        tokens_.push_back({Tok::kOp, std::string(1, c), pos});
        ++i;
        continue;
      }
      if (c == '-') { tokens_.push_back({Tok::kMinus, "-", pos}); ++i; continue; }
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < in_.size() && (std::isalnum(static_cast<unsigned char>(in_[j])) || in_[j] == '_' ||
                                  in_[j] == '.' || in_[j] == '-')) {
          ++j;
        }
        std::string word(in_.substr(i, j - i));
        Tok type = Tok::kWord;
        if (word == "AND") type = Tok::kAnd;
        else if (word == "OR") type = Tok::kOr;
        else if (word == "NOT") type = Tok::kNot;
        tokens_.push_back({type, std::move(word), pos});
        i = j;
        continue;
      }
      // The whole character, never a lone byte of it (the message must stay valid UTF-8).
      const size_t n = utf8::SequenceLength(in_, i);
      return Error(pos, n == 0 ? absl::StrCat("invalid UTF-8 byte 0x", absl::Hex(static_cast<unsigned char>(c)))
                               : absl::StrCat("unexpected character '", in_.substr(i, n), "'"));
    }
    tokens_.push_back({Tok::kEnd, "end of filter", in_.size() + 1});
    return absl::OkStatus();
  }

  const Token& Peek() const { return tokens_[next_]; }
  const Token& Take() { return tokens_[next_++]; }

  absl::StatusOr<std::string> ParseOr(int depth) {
    ASSIGN_OR_RETURN(std::string left, ParseAnd(depth));
    std::vector<std::string> parts{left};
    while (Peek().type == Tok::kOr) {
      Take();
      ASSIGN_OR_RETURN(std::string right, ParseAnd(depth));
      parts.push_back(std::move(right));
    }
    if (parts.size() == 1) return parts[0];
    return absl::StrCat("(", absl::StrJoin(parts, " OR "), ")");
  }

  absl::StatusOr<std::string> ParseAnd(int depth) {
    ASSIGN_OR_RETURN(std::string left, ParseUnary(depth));
    std::vector<std::string> parts{left};
    while (true) {
      if (Peek().type == Tok::kAnd) {
        Take();
      } else if (Peek().type != Tok::kWord && Peek().type != Tok::kLParen &&
                 Peek().type != Tok::kNot && Peek().type != Tok::kMinus) {
        break;  // juxtaposition means AND (AIP-160); anything else ends the sequence
      }
      ASSIGN_OR_RETURN(std::string right, ParseUnary(depth));
      parts.push_back(std::move(right));
    }
    if (parts.size() == 1) return parts[0];
    return absl::StrCat("(", absl::StrJoin(parts, " AND "), ")");
  }

  absl::StatusOr<std::string> ParseUnary(int depth) {
    if (depth > kMaxFilterDepth) return Error(Peek().pos, "filter is nested too deeply");
    if (Peek().type == Tok::kNot || Peek().type == Tok::kMinus) {
      Take();
      ASSIGN_OR_RETURN(std::string inner, ParseUnary(depth + 1));
      return absl::StrCat("(NOT ", inner, ")");
    }
    if (Peek().type == Tok::kLParen) {
      const size_t pos = Take().pos;
      ASSIGN_OR_RETURN(std::string inner, ParseOr(depth + 1));
      if (Peek().type != Tok::kRParen) {
        return Error(Peek().pos, absl::StrCat("expected ')' to close '(' at position ", pos));
      }
      Take();
      return inner;
    }
    return ParseComparison();
  }

  absl::StatusOr<std::string> ParseComparison() {
    const Token field_tok = Take();
    if (field_tok.type != Tok::kWord) {
      return Error(field_tok.pos, absl::StrCat("expected a field name, found '", field_tok.text, "'"));
    }
    if (++terms_ > kMaxFilterTerms) {
      return Error(field_tok.pos, absl::StrCat("more than ", kMaxFilterTerms, " comparisons"));
    }
    const Column* column = catalog_.Find(field_tok.text);
    if (column == nullptr) {
      std::vector<std::string> names;
      for (const auto& c : catalog_.columns()) names.push_back(c.path);
      return Error(field_tok.pos, absl::StrCat("unknown field '", field_tok.text,
                                               "'; filterable fields: ", absl::StrJoin(names, ", ")));
    }
    const Token op = Take();
    if (op.type != Tok::kOp) {
      return Error(op.pos, absl::StrCat("expected an operator after '", field_tok.text, "'"));
    }
    const Token value = Take();
    if (value.type != Tok::kString && value.type != Tok::kWord) {
      return Error(value.pos, absl::StrCat("expected a value after '", op.text, "'"));
    }
    return Compare(*column, op, value);
  }

  absl::StatusOr<std::string> Compare(const Column& column, const Token& op, const Token& value) {
    const std::string col = absl::StrCat("t.", column.column);
    if (column.type == ColumnType::kRepeatedString) {
      if (op.text != ":") {
        return Error(op.pos, absl::StrCat("'", column.path, "' is a list: use '", column.path, ":\"value\"'"));
      }
      params_.push_back(column.path);
      params_.push_back(value.text);
      return absl::StrCat("EXISTS (SELECT 1 FROM ", catalog_.ValuesTable(),
                          " v WHERE v.seq = t.seq AND v.field = ? AND v.value = ?)");
    }
    if (op.text == ":") {
      return Error(op.pos, absl::StrCat("':' applies to list fields; use '=' for '", column.path, "'"));
    }
    const std::string sql_op = op.text == "!=" ? "<>" : op.text;
    switch (column.type) {
      case ColumnType::kString:
        params_.push_back(value.text);
        break;
      case ColumnType::kEnum: {
        if (op.text != "=" && op.text != "!=") {
          return Error(op.pos, absl::StrCat("'", column.path, "' is an enum: use '=' or '!='"));
        }
        const auto* v = FindEnumValue(column.leaf->enum_type(), value.text);
        if (v == nullptr) {
          return Error(value.pos, absl::StrCat("'", value.text, "' is not a value of ", column.path));
        }
        params_.push_back(static_cast<int64_t>(v->number()));
        break;
      }
      case ColumnType::kInt: {
        int64_t n;
        if (!absl::SimpleAtoi(value.text, &n)) {
          return Error(value.pos, absl::StrCat("'", value.text, "' is not an integer"));
        }
        params_.push_back(n);
        break;
      }
      case ColumnType::kDate: {
        std::string date;
        if (!ParseDateLiteral(value.text, &date)) {
          return Error(value.pos, absl::StrCat("'", value.text, "' is not a date \"YYYY-MM-DD\""));
        }
        params_.push_back(date);
        break;
      }
      case ColumnType::kTimestamp: {
        int64_t micros;
        if (!ParseTimeLiteral(value.text, &micros)) {
          return Error(value.pos, absl::StrCat("'", value.text, "' is not an RFC 3339 time or date"));
        }
        params_.push_back(micros);
        break;
      }
      case ColumnType::kRepeatedString: break;
    }
    return absl::StrCat(col, " ", sql_op, " ?");
  }

  absl::string_view in_;
  const Catalog& catalog_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
  int terms_ = 0;
  std::vector<storage::SqlValue> params_;
};

}  // namespace

absl::StatusOr<SqlFragment> CompileFilter(absl::string_view filter, const Catalog& catalog) {
  return Parser(filter, catalog).Run();
}

}  // namespace kp::resource
