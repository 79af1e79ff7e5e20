/* erg calibrate's requests: --path, --retries and --body-extra as options,
 * the body with --body-extra merged over erg's fields, and the token counts
 * read from OpenAI and llama.cpp answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include "calibrate_args.h"
#include "calibrate_request.h"

#define MAX_ARGS 16

/* cal_args_parse on two valid workers and then a NULL-terminated list. */
static int cal_parse(struct cal_args *a, ...)
{
	char *argv[MAX_ARGS + 6] = { "calibrate", "--worker", "a:1:80:1e9", "--worker", "b:2:81:2e9" };
	int argc = 5;
	va_list ap;

	va_start(ap, a);
	for (char *s; argc < MAX_ARGS + 5 && (s = va_arg(ap, char *)); )
		argv[argc++] = s;
	va_end(ap);
	argv[argc] = NULL;
	return cal_args_parse(argc, argv, a);
}

static void test_options(void **state)
{
	(void)state;
	struct cal_args *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	assert_int_equal(cal_parse(a, NULL), 0);
	assert_string_equal(a->path, "/v1/chat/completions");
	assert_null(a->body_extra);
	assert_int_equal(a->retries, 3);
	assert_int_equal(cal_parse(a, "--path", "/completion", "--retries", "0", "--body-extra",
				   "{\"temperature\":0, \"top_k\": 1}", NULL), 0);
	assert_string_equal(a->path, "/completion");
	assert_int_equal(a->retries, 0);
	assert_non_null(strstr(a->body_extra, "temperature"));
	assert_int_equal(cal_parse(a, "--retries", "100", NULL), 0);
	assert_int_equal(a->retries, 100);
	/* usage errors, exit 2 */
	const char *bad[][2] = {
		{ "--retries", "101" }, { "--retries", "-1" }, { "--retries", "2x" }, { "--retries", "" },
		{ "--path", "v1/chat" }, { "--path", "" }, { "--path", "/a b" }, { "--path", "/a\r\nX: 1" },
		{ "--body-extra", "" }, { "--body-extra", "{" }, { "--body-extra", "[1,2]" },
		{ "--body-extra", "0" }, { "--body-extra", "\"x\"" }, { "--body-extra", "null" },
		{ "--body-extra", "{\"a\":1} {}" }, { "--body-extra", "{\"stream\":true}" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cal_parse(a, bad[i][0], bad[i][1], NULL), 2);
	char long_path[CAL_PATH_MAX + 2];
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(cal_parse(a, "--path", long_path, NULL), 2);
	long_path[CAL_PATH_MAX] = '\0';
	assert_int_equal(cal_parse(a, "--path", long_path, NULL), 0);
	free(a);
}

static void test_check_messages(void **state)
{
	(void)state;
	char err[512];

	assert_int_equal(cal_body_extra_check("{\"temperature\":0", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--body-extra"));
	assert_non_null(strstr(err, "not valid JSON"));
	assert_int_equal(cal_body_extra_check("[]", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--body-extra"));
	assert_non_null(strstr(err, "JSON object"));
	assert_int_equal(cal_body_extra_check("{\"stream\":1}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "stream"));
	/* the message is one line even when the value is not */
	assert_int_equal(cal_body_extra_check("{\n\"a\":\n", err, sizeof(err)), -1);
	assert_null(strchr(err, '\n'));
	assert_int_equal(cal_body_extra_check("{\"stream\":false}", err, sizeof(err)), 0);
	assert_int_equal(cal_body_extra_check("{}", err, sizeof(err)), 0);
	assert_int_equal(cal_path_check("/a\tb", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--path"));
	assert_null(strchr(err, '\t'));
}

static void test_body(void **state)
{
	(void)state;
	char *text = cal_request_body("qwen-7b", 64, 9, 2, "/v1/chat/completions", NULL);
	cJSON *b = cJSON_Parse(text), *msgs;

	assert_non_null(b);
	assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "qwen-7b");
	assert_true(cJSON_GetObjectItem(b, "max_tokens")->valuedouble == 64);
	assert_true(cJSON_GetObjectItem(b, "seed")->valuedouble == 9);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(b, "stream")));
	msgs = cJSON_GetObjectItem(b, "messages");
	assert_int_equal(cJSON_GetArraySize(msgs), 1);
	assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring,
			       "request 3"));
	assert_null(cJSON_GetObjectItem(b, "prompt"));
	cJSON_Delete(b);
	free(text);

	/* merged: new members join, same names replace erg's, the last of a
	 * repeated name wins, nested values are copied whole */
	text = cal_request_body("m", 64, 9, 0, "/v1/chat/completions?x=1",
				"{\"temperature\":0,\"max_tokens\":8,\"seed\":1,\"seed\":5,"
				"\"stop\":[\"\\n\",\"END\"],\"model\":\"other\"}");
	b = cJSON_Parse(text);
	assert_non_null(b);
	assert_true(cJSON_GetObjectItem(b, "temperature")->valuedouble == 0);
	assert_true(cJSON_GetObjectItem(b, "max_tokens")->valuedouble == 8);
	assert_true(cJSON_GetObjectItem(b, "seed")->valuedouble == 5);
	assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "other");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "stop"), 0)->valuestring, "\n");
	assert_non_null(cJSON_GetObjectItem(b, "messages"));
	/* one member per name: nothing duplicated by the merge */
	int members = 0, seeds = 0;
	for (cJSON *m = b->child; m; m = m->next) {
		members++;
		seeds += !strcmp(m->string, "seed");
	}
	assert_int_equal(seeds, 1);
	assert_int_equal(members, 7);	/* model max_tokens stream seed messages temperature stop */
	cJSON_Delete(b);
	free(text);

	/* other endpoints get a prompt, not messages */
	text = cal_request_body("m", 16, 1, 0, "/completion", "{}");
	b = cJSON_Parse(text);
	assert_non_null(b);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(b, "prompt")));
	assert_null(cJSON_GetObjectItem(b, "messages"));
	cJSON_Delete(b);
	free(text);
}

static void test_answer(void **state)
{
	(void)state;
	long ct = -1, pt = -1;
	char err[512];

	assert_int_equal(cal_parse_answer("{\"choices\":[],\"usage\":{\"completion_tokens\":12,\"prompt_tokens\":30}}",
					  &ct, &pt, err, sizeof(err)), 0);
	assert_int_equal(ct, 12);
	assert_int_equal(pt, 30);
	assert_int_equal(cal_parse_answer("{\"usage\":{\"completion_tokens\":4}}", &ct, &pt, err, sizeof(err)), 0);
	assert_int_equal(ct, 4);
	assert_int_equal(pt, 0);
	/* llama.cpp's /completion */
	assert_int_equal(cal_parse_answer("{\"content\":\"x\",\"tokens_predicted\":7,\"tokens_evaluated\":3}", &ct,
					  &pt, err, sizeof(err)), 0);
	assert_int_equal(ct, 7);
	assert_int_equal(pt, 3);
	const char *bad[] = {
		"", "not json", "[1]", "{}", "{\"usage\":{}}", "{\"usage\":{\"completion_tokens\":-1}}",
		"{\"usage\":{\"completion_tokens\":1e300}}", "{\"usage\":{\"completion_tokens\":\"5\"}}",
		"{\"usage\":{\"completion_tokens\":5,\"prompt_tokens\":-2}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(cal_parse_answer(bad[i], &ct, &pt, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_check_messages),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
