// schema_meta.hpp: the draft 7 meta-schema (schema_draft7.cpp).
#pragma once

namespace outbox_schema {

extern const char *const DRAFT7_URI;			// without the trailing '#'
extern const char *const DRAFT7_META_SCHEMA;	// JSON text

}  // namespace outbox_schema
