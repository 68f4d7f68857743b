/*
 * uuidv7.c: time-ordered UUIDs (RFC 9562, version 7) generated in the database.
 *
 * Layout: 48 bits of Unix time in milliseconds, version 7, 12 bits of sub-millisecond time
 * (RFC 9562 section 6.2, method 3), variant 0b10, 62 random bits. The sub-millisecond bits
 * and a per-backend monotonic clock keep ids from one backend strictly increasing even when
 * the system clock stands still or steps back; ids from different backends are ordered to
 * within clock precision.
 */
#include "postgres.h"

#include <time.h>

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "outbox.h"

/* Time in units of 1/4096 ms since the Unix epoch: the 48+12 time bits of a UUIDv7. */
static uint64
now_in_uuid_ticks(void)
{
	struct timespec ts;
	uint64		ms;
	uint64		sub;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64) ts.tv_sec * 1000 + (uint64) ts.tv_nsec / 1000000;
	sub = ((uint64) (ts.tv_nsec % 1000000) * 4096) / 1000000;
	return (ms << 12) | sub;
}

void
outbox_uuidv7_generate(unsigned char out[16])
{
	static uint64 last_ticks = 0;
	uint64		ticks = now_in_uuid_ticks();

	if (ticks <= last_ticks)
		ticks = last_ticks + 1;
	last_ticks = ticks;

	if (!pg_strong_random(out + 8, 8))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes for a UUIDv7")));

	/* 48-bit millisecond timestamp, big-endian */
	out[0] = (unsigned char) (ticks >> 52);
	out[1] = (unsigned char) (ticks >> 44);
	out[2] = (unsigned char) (ticks >> 36);
	out[3] = (unsigned char) (ticks >> 28);
	out[4] = (unsigned char) (ticks >> 20);
	out[5] = (unsigned char) (ticks >> 12);
	/* version 7 and the 12 sub-millisecond bits (rand_a) */
	out[6] = (unsigned char) (0x70 | ((ticks >> 8) & 0x0F));
	out[7] = (unsigned char) (ticks & 0xFF);
	/* variant 0b10; the rest of bytes 8..15 stays random */
	out[8] = (unsigned char) ((out[8] & 0x3F) | 0x80);
}

PG_FUNCTION_INFO_V1(outbox_uuidv7);

Datum
outbox_uuidv7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = palloc(UUID_LEN);

	outbox_uuidv7_generate(uuid->data);
	PG_RETURN_UUID_P(uuid);
}

PG_FUNCTION_INFO_V1(outbox_uuidv7_time);

/* The creation time a UUIDv7 carries, to the millisecond (NULL for other versions). */
Datum
outbox_uuidv7_time(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_GETARG_UUID_P(0);
	uint64		ms = 0;
	int			i;

	if ((uuid->data[6] >> 4) != 7 || (uuid->data[8] & 0xC0) != 0x80)
		PG_RETURN_NULL();
	for (i = 0; i < 6; i++)
		ms = (ms << 8) | uuid->data[i];
	/* Unix ms to PostgreSQL's microseconds since 2000-01-01 */
	PG_RETURN_TIMESTAMPTZ((TimestampTz) ms * 1000 -
						  ((TimestampTz) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC));
}
