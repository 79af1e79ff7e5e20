/* Exact 64-bit integers in JSON: cJSON keeps numbers as doubles, which stop
 * being exact above 2^53 (nanojoules pass that after about 9 MJ), so
 * counters are written as raw integer text. */
#ifndef ERG_JSON_U64_H
#define ERG_JSON_U64_H

#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

static inline void json_add_u64(cJSON *obj, const char *name, uint64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	cJSON_AddItemToObject(obj, name, cJSON_CreateRaw(text));
}

#endif
