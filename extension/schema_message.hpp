// schema_message.hpp: valijson's errors as the outbox words a failure (schema_message.cpp).
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <valijson/validation_results.hpp>

namespace outbox_schema {

struct Failure
{
	std::string pointer;	// JSON pointer of the failing value, "" for the root
	std::string reason;		// the keyword and its expected value: "minimum 1", "required \"id\""
	std::string detail;		// valijson's own words
};

// The one failure to report out of valijson's errors, with the expected value read from the
// schema document where the keyword can be found along the pointer.
Failure describe_failure(const valijson::ValidationResults &results, const nlohmann::json &schema);

// At most max bytes and whole UTF-8 characters, "..." after a cut.
std::string shortened(const std::string &s, size_t max = 160);

// "a/b~c" -> "a~1b~0c" (RFC 6901).
std::string escape_pointer_token(const std::string &token);

}  // namespace outbox_schema
