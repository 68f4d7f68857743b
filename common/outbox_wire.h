/*
 * outbox_wire.h: the names and limits that the extension (C), the decoder (C++) and the relay
 * (C++) must agree on. Plain C preprocessor definitions so that all three include this one file.
 */
#ifndef OUTBOX_WIRE_H
#define OUTBOX_WIRE_H

/* Where table-storage events live (the decoder's preset adds exactly this table). */
#define OUTBOX_SCHEMA "outbox"
#define OUTBOX_EVENTS_TABLE "events"

/* The logical message prefix of the wal storage mode (the preset keeps exactly this prefix). */
#define OUTBOX_MESSAGE_PREFIX "outbox"

/* The outbox_decoder option that selects the relay's preset (`outbox` = 1: format 2, inserts
 * into OUTBOX_SCHEMA.OUTBOX_EVENTS_TABLE and messages with OUTBOX_MESSAGE_PREFIX only). */
#define OUTBOX_DECODER_PRESET_OPTION "outbox"

/*
 * A wal-storage message is authenticated, because any role may call pg_logical_emit_message():
 *   content = OUTBOX_MAC_OPEN <64 lower-case hex> OUTBOX_MAC_KID <key id, decimal> ","
 *             <body without its '{'>
 * where body is the event as one JSON object ({"id":...}) and the hex digits are
 *   HMAC-SHA256(key, <xid> OUTBOX_MAC_XID_SEPARATOR <body in UTF-8>)
 * with <xid> the top-level transaction id in decimal (the "xid" of the decoded message: a copy
 * written in another transaction does not verify) and key the database's key of that id, from
 * outbox.message_keys(). Keys are derived for each database from the stored ones, K in
 * outbox.message_key_store (which CREATE DATABASE ... TEMPLATE copies):
 *   key = HMAC-SHA256(K, "outbox-db:" <system identifier> ":" <database oid>), both in decimal.
 * The content stays one JSON object whose first member is "mac".
 *
 * Version 0.2 wrote OUTBOX_MAC_OPEN <hex> OUTBOX_MAC_CLOSE <body without '{'>, the MAC over the
 * body alone, with the one key 0.2 had, which became key OUTBOX_LEGACY_KEY_ID. The relay still
 * verifies that form (a backend that loaded the old module signs so until it reconnects); it is
 * not bound to a transaction, so rotate the key once after upgrading to retire it.
 */
#define OUTBOX_MAC_OPEN "{\"mac\":\""
#define OUTBOX_MAC_CLOSE "\","
#define OUTBOX_MAC_KID "\",\"kid\":"
#define OUTBOX_MAC_XID_SEPARATOR ":"
#define OUTBOX_MAC_HEX_LEN 64
#define OUTBOX_MAC_KEY_BYTES 32
#define OUTBOX_LEGACY_KEY_ID 1

/*
 * A control message is signed like an event; its body starts with this member:
 *   {"control":"release","aggregate_type":...,"aggregate_id":...,"slot_name":...}
 * (outbox.release_parked(): the relay stops parking that aggregate, in stream order).
 */
#define OUTBOX_CONTROL_FIELD "control"
#define OUTBOX_CONTROL_RELEASE "release"
/*
 *   {"control":"keys","key_id":<new key id>}
 * (outbox.rotate_message_key(), signed with the key it supersedes): a relay reloads its keys
 * when it reads this, so it knows a new key before any transaction that signed with it, which
 * commits later, reaches it.
 */
#define OUTBOX_CONTROL_KEYS "keys"

/*
 * An `outbox` message larger than outbox_decoder's option OUTBOX_MESSAGE_MAX_BYTES_OPTION (bytes of
 * content, default OUTBOX_MESSAGE_MAX_BYTES_DEFAULT, at most OUTBOX_MESSAGE_MAX_BYTES_CEILING) is
 * not written: escaping a ~180 MB content as JSON exceeds PostgreSQL's 1 GB string limit, the
 * walsender fails, and fails again at the same message after every reconnect. Its M line
 * carries, in place of the content, a member of the line itself:
 *   {"action":"M",...,"prefix":"outbox","content":null,"oversized":{"bytes":<size>,"limit":<limit>}}
 * Only the plugin writes line members (a role chooses the prefix and content, both escaped
 * strings), so no message a role writes can look like this, and the relay knows it without the
 * key. outbox_emit refuses to write a message above the default limit, so nothing genuine is
 * ever replaced (the ceiling keeps six-fold escaping of the content, \u00XX, below 1 GB).
 */
#define OUTBOX_MESSAGE_MAX_BYTES_OPTION "max-outbox-message-bytes"
#define OUTBOX_MESSAGE_MAX_BYTES_DEFAULT (64 * 1024 * 1024)
#define OUTBOX_MESSAGE_MAX_BYTES_CEILING (128 * 1024 * 1024)
#define OUTBOX_OVERSIZED_FIELD "oversized"

/* AMQP 0-9-1 short strings (exchange, routing key, type, message_id, header names). */
#define OUTBOX_SHORTSTR_MAX 255

/* Fields that become header values: bounded so that the header table fits in one frame. */
#define OUTBOX_AGGREGATE_TYPE_MAX 255
#define OUTBOX_AGGREGATE_ID_MAX 1024
#define OUTBOX_CAUSATION_ID_MAX 1024

/*
 * The AMQP header table must fit in one frame (frame_max is 128 KiB with RabbitMQ's defaults).
 * outbox_emit bounds the encoded size of what the application controls (its headers plus the
 * x-outbox-aggregate-type, x-outbox-aggregate-id, x-outbox-causation-id, traceparent,
 * tracestate and x-outbox-schema-version entries, each when its field is set; the schema
 * version counted as the larger of an integer and a string of 10 digits) by
 * OUTBOX_EVENT_HEADERS_MAX; the relay bounds the whole table it sends, its own metadata
 * included, by OUTBOX_HEADER_TABLE_MAX. Encoded size of a table entry: 1 + name length + 1 +
 * value (string: 4 + length; integer, float: 8; boolean: 1; null: 0).
 */
#define OUTBOX_EVENT_HEADERS_MAX 61440
#define OUTBOX_HEADER_TABLE_MAX 65536

/*
 * Event fields of 0.4: columns of OUTBOX_SCHEMA.OUTBOX_EVENTS_TABLE, and members of a wal-storage
 * message written only when not NULL (a missing member reads as null):
 *   "traceparent", "tracestate"  W3C Trace Context (Level 1 traceparent; tracestate of at most
 *                                OUTBOX_TRACESTATE_MAX_MEMBERS members and
 *                                OUTBOX_TRACESTATE_MAX_CHARS characters), checked by outbox_emit;
 *                                sent as the headers of the same names
 *   "priority"                   0..OUTBOX_PRIORITY_MAX (JSON number; smallint column)
 *   "schema_version"             the version of the event type's schema the payload was checked
 *                                against (JSON number; integer column), sent as
 *                                OUTBOX_SCHEMA_VERSION_HEADER
 */
#define OUTBOX_TRACEPARENT_HEADER "traceparent"
#define OUTBOX_TRACESTATE_HEADER "tracestate"
#define OUTBOX_SCHEMA_VERSION_HEADER "x-outbox-schema-version"
#define OUTBOX_TRACESTATE_MAX_MEMBERS 32
#define OUTBOX_TRACESTATE_MAX_CHARS 512
/* A traceparent of a version above 00 (which may add fields after its 55 characters). */
#define OUTBOX_TRACEPARENT_MAX_CHARS 256
#define OUTBOX_PRIORITY_MAX 9

/* Header names the relay sets itself (any case) and names RabbitMQ gives a meaning (exact). */
#define OUTBOX_RESERVED_HEADER_PREFIX "x-outbox-"
#define OUTBOX_RESERVED_HEADER_CC "CC"
#define OUTBOX_RESERVED_HEADER_BCC "BCC"

/* Header numbers: integers in int64 are sent as AMQP int64, others as float64; numbers whose
 * magnitude is 2^63 or more are refused (send them as strings). */

#endif
