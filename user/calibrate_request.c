/* erg calibrate's request bodies and answers, with cJSON. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "calibrate_request.h"
#include "cli.h"
#include "errbuf.h"

#define EXTRA_EXAMPLE "'{\"temperature\":0}'"

int cal_path_check(const char *path, char *err, size_t errlen)
{
	char q[80];
	size_t n = strlen(path);

	if (path[0] == '/' && n <= CAL_PATH_MAX) {
		const char *p = path;

		/* a space or control byte would end or break the request line */
		while (*p > ' ' && *p < 0x7f)
			p++;
		if (!*p)
			return 0;
	}
	errbuf_set(err, errlen, "--path '%s': expected the endpoint's path, starting with '/', at most %d "
		   "visible ASCII characters, e.g. %s", cli_quote(path, q, sizeof(q)), CAL_PATH_MAX,
		   CAL_DEFAULT_PATH);
	return -1;
}

int cal_body_extra_check(const char *json, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithOpts(json, &end, 1);
	char q[80];

	if (!doc) {
		long at = end && end >= json ? (long)(end - json) : 0;

		errbuf_set(err, errlen, "--body-extra '%s': not valid JSON (at byte %ld); expected one JSON "
			   "object, e.g. " EXTRA_EXAMPLE, cli_quote(json, q, sizeof(q)), at);
		return -1;
	}
	if (!cJSON_IsObject(doc)) {
		errbuf_set(err, errlen, "--body-extra '%s': expected a JSON object of fields to add, e.g. "
			   EXTRA_EXAMPLE, cli_quote(json, q, sizeof(q)));
		cJSON_Delete(doc);
		return -1;
	}
	cJSON *stream = cJSON_GetObjectItemCaseSensitive(doc, "stream");
	if (stream && !cJSON_IsFalse(stream)) {
		errbuf_set(err, errlen, "--body-extra: \"stream\" must stay false: erg calibrate reads the token "
			   "counts from a whole answer; leave it out");
		cJSON_Delete(doc);
		return -1;
	}
	cJSON_Delete(doc);
	return 0;
}

/* "/v1/chat/completions" and "/chat/completions?x=1" take messages. */
static bool chat_path(const char *path)
{
	static const char tail[] = "/chat/completions";
	size_t n = strcspn(path, "?#"), t = sizeof(tail) - 1;

	return n >= t && !strncmp(path + n - t, tail, t);
}

/* Every member of extra replaces body's of the same name or joins it; of
 * repeated names in extra the last wins. -1 if out of memory. */
static int merge(cJSON *body, const cJSON *extra)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, extra) {
		cJSON *copy = cJSON_Duplicate(m, 1);

		if (!copy)
			return -1;
		cJSON_DeleteItemFromObjectCaseSensitive(body, m->string);
		if (!cJSON_AddItemToObject(body, m->string, copy)) {
			cJSON_Delete(copy);
			return -1;
		}
	}
	return 0;
}

char *cal_request_body(const char *model, long max_tokens, long seed, long index, const char *path,
		       const char *extra)
{
	cJSON *body = cJSON_CreateObject(), *ext = NULL;
	char prompt[96], *text = NULL;
	bool ok;

	snprintf(prompt, sizeof(prompt), "Calibration request %ld: reason step by step about energy.", index + 1);
	ok = body && cJSON_AddStringToObject(body, "model", model) &&
	     cJSON_AddNumberToObject(body, "max_tokens", (double)max_tokens) &&
	     cJSON_AddFalseToObject(body, "stream") && cJSON_AddNumberToObject(body, "seed", (double)seed);
	if (ok && chat_path(path)) {
		cJSON *msgs = cJSON_AddArrayToObject(body, "messages"), *msg = cJSON_CreateObject();

		if (msgs && msg && cJSON_AddItemToArray(msgs, msg))	/* msg is the array's now */
			ok = cJSON_AddStringToObject(msg, "role", "user") &&
			     cJSON_AddStringToObject(msg, "content", prompt);
		else {
			cJSON_Delete(msg);
			ok = false;
		}
	} else if (ok) {
		ok = cJSON_AddStringToObject(body, "prompt", prompt) != NULL;
	}
	if (ok && extra) {
		ext = cJSON_Parse(extra);
		ok = cJSON_IsObject(ext) && !merge(body, ext);
	}
	if (ok)
		text = cJSON_PrintUnformatted(body);
	cJSON_Delete(ext);
	cJSON_Delete(body);
	return text;
}

/* A count from the network: a number, whole-number range, bounded before
 * it becomes an integer. NULL (absent) is 0 when optional. */
static int count_of(const cJSON *v, bool optional, long *out)
{
	if (!v && optional) {
		*out = 0;
		return 0;
	}
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e9))
		return -1;
	*out = (long)v->valuedouble;
	return 0;
}

int cal_parse_answer(const char *answer, long *completion_tokens, long *prompt_tokens, char *err,
		     size_t errlen)
{
	cJSON *doc = cJSON_Parse(answer);
	const cJSON *usage, *ct, *pt;
	char q[256];
	int rc = -1;

	if (!cJSON_IsObject(doc)) {
		errbuf_set(err, errlen, "answer is not a JSON object: %s", cli_quote(answer, q, sizeof(q)));
		goto out;
	}
	usage = cJSON_GetObjectItemCaseSensitive(doc, "usage");
	if (cJSON_IsObject(usage)) {
		ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
		pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
	} else {	/* llama.cpp's own /completion */
		ct = cJSON_GetObjectItemCaseSensitive(doc, "tokens_predicted");
		pt = cJSON_GetObjectItemCaseSensitive(doc, "tokens_evaluated");
	}
	if (count_of(ct, false, completion_tokens) || count_of(pt, true, prompt_tokens)) {
		errbuf_set(err, errlen, "answer without a usable usage.completion_tokens: %s",
			   cli_quote(answer, q, sizeof(q)));
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(doc);
	return rc;
}
