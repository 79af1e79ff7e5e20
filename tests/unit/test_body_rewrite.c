/* body_rewrite: the body of a "model": "auto" request made concrete, byte for
 * byte outside the values it changes (tests/fuzz/fuzz_http_parse.c fuzzes it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "body_rewrite.h"

static void assert_rewrite(const char *in, const char *model, unsigned budget, const char *want)
{
	char out[1024];
	size_t len = strlen(in), cap = sizeof(out);
	size_t n;

	assert_true(cap <= sizeof(out));
	n = body_rewrite(in, len, model, budget, out, cap);
	if (!want) {
		assert_int_equal(n, 0);
		return;
	}
	assert_int_equal(n, strlen(want));
	if (memcmp(out, want, n)) {
		fprintf(stderr, "got:  %.*s\nwant: %s\n", (int)n, out, want);
		fail();
	}
	/* the sizing call gives the same length */
	assert_int_equal(body_rewrite(in, len, model, budget, NULL, 0), n);
	/* a short buffer: the full length, nothing written past cap */
	memset(out, 'X', sizeof(out));
	assert_int_equal(body_rewrite(in, len, model, budget, out, 5), n);
	assert_int_equal(out[5], 'X');
}

static void test_rewrite_max_tokens(void **state)
{
	(void)state;
	assert_rewrite("{\"model\":\"auto\",\"max_tokens\":99999,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
		       "8B", 1024,
		       "{\"model\":\"8B\",\"max_tokens\":1024,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	/* spacing, order and other keys kept byte for byte */
	assert_rewrite("{ \"stream\" : true ,\n \"max_tokens\" : 5,\t\"model\" :  \"auto\" , \"x\":{\"model\":1} }",
		       "70B", 16384,
		       "{ \"stream\" : true ,\n \"max_tokens\" : 16384,\t\"model\" :  \"70B\" , \"x\":{\"model\":1} }");
}

static void test_rewrite_max_completion_tokens(void **state)
{
	(void)state;
	assert_rewrite("{\"model\":\"auto\",\"max_completion_tokens\":7,\"temperature\":0.5}", "1.5B", 256,
		       "{\"model\":\"1.5B\",\"max_completion_tokens\":256,\"temperature\":0.5}");
	/* both: each one the client used */
	assert_rewrite("{\"max_tokens\":1,\"model\":\"auto\",\"max_completion_tokens\":2}", "m", 4096,
		       "{\"max_tokens\":4096,\"model\":\"m\",\"max_completion_tokens\":4096}");
}

static void test_rewrite_adds_max_tokens(void **state)
{
	(void)state;
	assert_rewrite("{\"messages\":[],\"model\":\"auto\",\"n\":1}", "32B", 4096,
		       "{\"messages\":[],\"model\":\"32B\",\"max_tokens\":4096,\"n\":1}");
	assert_rewrite("{\"model\":\"auto\"}", "8B", 1024, "{\"model\":\"8B\",\"max_tokens\":1024}");
	/* strings holding quotes, braces and the key names are not keys */
	assert_rewrite("{\"prompt\":\"a \\\"model\\\": {max_tokens} }\",\"model\":\"auto\"}", "8B", 256,
		       "{\"prompt\":\"a \\\"model\\\": {max_tokens} }\",\"model\":\"8B\",\"max_tokens\":256}");
}

static void test_rewrite_refuses(void **state)
{
	(void)state;
	assert_rewrite("{\"mo\\u0064el\":\"auto\"}", "8B", 256, NULL);	/* not spelled plainly */
	assert_rewrite("{\"prompt\":\"x\"}", "8B", 256, NULL);
	assert_rewrite("{\"x\":{\"model\":\"auto\"}}", "8B", 256, NULL);	/* not top level */
	assert_rewrite("[\"model\",\"auto\"]", "8B", 256, NULL);
	assert_rewrite("{}", "8B", 256, NULL);
	assert_rewrite("", "8B", 256, NULL);
	assert_rewrite("{\"model\":\"auto\"", "8B", 256, NULL);	/* cut short */
	assert_rewrite("{\"model\":\"auto\",\"prompt\":\"unterminated}", "8B", 256, NULL);
}

/* Every budget key the client used is set, so the body can grow by more
 * than one value's worth: the sizing call says by how much. */
static void test_rewrite_sizes_growth(void **state)
{
	char in[512], want[1024], out[1024];
	int w = 0, v = 0;

	(void)state;
	w += snprintf(in + w, sizeof(in) - (size_t)w, "{\"model\":\"auto\"");
	v += snprintf(want + v, sizeof(want) - (size_t)v, "{\"model\":\"a-long-model-name\"");
	for (int k = 0; k < 15; k++) {
		w += snprintf(in + w, sizeof(in) - (size_t)w, ",\"max_tokens\":1");
		v += snprintf(want + v, sizeof(want) - (size_t)v, ",\"max_tokens\":4294967295");
	}
	w += snprintf(in + w, sizeof(in) - (size_t)w, "}");
	v += snprintf(want + v, sizeof(want) - (size_t)v, "}");
	size_t n = body_rewrite(in, (size_t)w, "a-long-model-name", 4294967295u, NULL, 0);
	assert_int_equal(n, (size_t)v);
	assert_true(n > (size_t)w + strlen("a-long-model-name") + 48);
	assert_int_equal(body_rewrite(in, (size_t)w, "a-long-model-name", 4294967295u, out, n), n);
	assert_memory_equal(out, want, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_max_tokens),
		cmocka_unit_test(test_rewrite_max_completion_tokens),
		cmocka_unit_test(test_rewrite_adds_max_tokens),
		cmocka_unit_test(test_rewrite_refuses),
		cmocka_unit_test(test_rewrite_sizes_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
