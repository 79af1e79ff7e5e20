/* Prometheus text format writer and erg's families: exact text for the
 * pieces, and the whole rendering read back by the Prometheus client's own
 * parser (Debian's python3-prometheus-client). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "model_stats.h"
#include "prom.h"
#include "request_energy.h"

static void family_sample_and_escaping(void **state)
{
	struct prom_buf b;
	struct prom_label l[2] = { { "model", "a\\b\"c\nd" }, { "code", "200" } };

	(void)state;
	prom_buf_init(&b);
	prom_family(&b, "erg_x_total", PROM_COUNTER, "help with \\ and\nnewline");
	prom_sample(&b, "erg_x_total", l, 2, 1.5);
	prom_sample(&b, "erg_x_total", NULL, 0, 0.1);
	prom_sample(&b, "erg_x_total", NULL, 0, NAN);
	prom_sample(&b, "erg_x_total", NULL, 0, -INFINITY);
	prom_sample(&b, "erg_x_total", NULL, 0, 12345678901234567.0);
	assert_true(prom_buf_ok(&b));
	assert_string_equal(b.data,
			    "# HELP erg_x_total help with \\\\ and\\nnewline\n"
			    "# TYPE erg_x_total counter\n"
			    "erg_x_total{model=\"a\\\\b\\\"c\\nd\",code=\"200\"} 1.5\n"
			    "erg_x_total 0.1\n"
			    "erg_x_total NaN\n"
			    "erg_x_total -Inf\n"
			    "erg_x_total 12345678901234568\n");
	assert_int_equal(b.len, strlen(b.data));
	prom_buf_reset(&b);
	assert_int_equal(b.len, 0);
	prom_sample(&b, "g", NULL, 0, 2);
	assert_string_equal(b.data, "g 2\n");
	prom_buf_free(&b);
}

static void histogram_buckets_are_cumulative(void **state)
{
	struct prom_buf b;
	struct prom_label l = { "model", "m" };
	const double bounds[2] = { 0.5, 2 };
	const uint64_t counts[3] = { 1, 0, 3 };

	(void)state;
	prom_buf_init(&b);
	prom_histogram(&b, "h", &l, 1, bounds, 2, counts, 9.25);
	assert_string_equal(b.data,
			    "h_bucket{model=\"m\",le=\"0.5\"} 1\n"
			    "h_bucket{model=\"m\",le=\"2\"} 1\n"
			    "h_bucket{model=\"m\",le=\"+Inf\"} 4\n"
			    "h_sum{model=\"m\"} 9.25\n"
			    "h_count{model=\"m\"} 4\n");
	prom_buf_reset(&b);
	prom_histogram(&b, "h", NULL, 0, bounds, 2, counts, 0);
	assert_non_null(strstr(b.data, "h_bucket{le=\"+Inf\"} 4\n"));
	prom_buf_free(&b);
}

/* A model with traffic, a model without, odd names: the input both
 * tests below render. */
static void render_sample(struct prom_buf *b, bool with_stats)
{
	static struct model_stats_snapshot snap;
	struct model_stats *ms = model_stats_new(1);
	struct prom_model models[2] = {
		{ "qwen-7b", 12.5, 3.25, NULL },
		{ "we\"ird\\name\n", 0, NAN, NULL },
	};
	struct prom_worker workers[2] = { { "qwen-7b", "127.0.0.1:8091", true },
					  { "we\"ird\\name\n", "[::1]:8092", false } };
	struct prom_ledger ledger = { 100, 90, 15, 5, 7.5, LEDGER_CRITICAL };
	struct prom_erg in = { models, 2, workers, 2, &ledger, true, 3 };

	for (int i = 1; i <= 10; i++) {
		struct request_record r = { .status = i == 10 ? 502 : 200, .nj = (uint64_t)i * 100000000,
					    .latency_s = i * 0.05 };

		model_stats_add(ms, &r);
	}
	model_stats_snapshot(ms, 0, &snap);
	model_stats_free(ms);
	if (with_stats)
		models[0].stats = &snap;
	prom_render_erg(b, &in);
}

static void families_appear_once_with_their_series(void **state)
{
	struct prom_buf b;

	(void)state;
	prom_buf_init(&b);
	render_sample(&b, true);
	assert_true(prom_buf_ok(&b));
	assert_non_null(strstr(b.data, "# TYPE erg_energy_joules_total counter\n"));
	assert_non_null(strstr(b.data, "erg_energy_joules_total{model=\"qwen-7b\",source=\"gpu\"} 3.25\n"));
	/* no GPU part for the second model: no gpu series */
	assert_null(strstr(b.data, "name\\n\",source=\"gpu\""));
	assert_non_null(strstr(b.data, "erg_requests_total{model=\"qwen-7b\",code=\"200\"} 9\n"));
	assert_non_null(strstr(b.data, "erg_requests_total{model=\"qwen-7b\",code=\"502\"} 1\n"));
	assert_non_null(strstr(b.data, "erg_request_energy_joules_count{model=\"qwen-7b\"} 9\n"));
	assert_non_null(strstr(b.data, "erg_request_duration_seconds_count{model=\"qwen-7b\"} 10\n"));
	assert_non_null(strstr(b.data, "erg_worker_up{model=\"we\\\"ird\\\\name\\n\",worker=\"[::1]:8092\"} 0\n"));
	assert_non_null(strstr(b.data, "erg_ledger_regime{regime=\"critical\"} 1\n"));
	assert_non_null(strstr(b.data, "erg_ledger_regime{regime=\"undetermined\"} 0\n"));
	assert_non_null(strstr(b.data, "erg_ledger_storage_joules 7.5\n"));
	assert_non_null(strstr(b.data, "erg_bpf_events_dropped_total 3\n"));
	assert_int_equal(strstr(b.data, "# TYPE erg_request_energy_joules histogram") -
				 strstr(b.data, "# TYPE erg_request_energy_joules "),
			 0);
	/* erg top has no request statistics: no request families at all */
	prom_buf_reset(&b);
	render_sample(&b, false);
	assert_null(strstr(b.data, "erg_requests_total"));
	assert_null(strstr(b.data, "erg_request_duration_seconds"));
	assert_non_null(strstr(b.data, "erg_energy_joules_total{model=\"qwen-7b\",source=\"cpu\"} 12.5\n"));
	prom_buf_free(&b);
}

static void ledger_rows_from_a_live_ledger(void **state)
{
	struct ledger_config cfg;
	struct prom_ledger pl;
	struct ledger *l;
	char err[256];

	(void)state;
	ledger_config_init(&cfg);
	cfg.supply_watts = 10;
	cfg.storage_joules = 4;
	cfg.given = cfg.supply_given = true;
	l = ledger_open(&cfg, err, sizeof(err));
	assert_non_null(l);
	ledger_start(l, 0);
	ledger_add_demand(l, 0.5, 3);
	ledger_add_demand(l, 1.5, 25);	/* half in each slot */
	ledger_flush(l, 2.0);
	prom_ledger_from(&pl, l);
	assert_float_equal(pl.demand_joules, ledger_stats(l)->total_demand, 0);
	assert_float_equal(pl.demand_joules, 28, 1e-9);
	assert_float_equal(pl.supply_joules, 20, 1e-9);
	assert_float_equal(pl.aux_joules, ledger_stats(l)->total_aux, 0);
	assert_float_equal(pl.waste_joules, ledger_stats(l)->total_waste, 0);
	assert_float_equal(pl.aux_joules, 8, 1e-9);	/* slots of 15.5 and 12.5 J, storage empty */
	assert_float_equal(pl.storage_joules, ledger_storage(l), 0);
	assert_int_equal(pl.regime, ledger_stats(l)->regime);
	ledger_close(l);
}

/* The Prometheus client's parser reads the whole rendering back: every
 * family, type, label value (escapes undone) and histogram. */
static const char parse_check[] =
	"import sys\n"
	"from prometheus_client.parser import text_string_to_metric_families\n"
	"fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}\n"
	"want = {'erg_energy_joules': 'counter', 'erg_requests': 'counter', 'erg_request_energy_joules': 'histogram',\n"
	"        'erg_request_duration_seconds': 'histogram', 'erg_worker_up': 'gauge',\n"
	"        'erg_ledger_demand_joules': 'counter', 'erg_ledger_supply_joules': 'counter',\n"
	"        'erg_ledger_aux_joules': 'counter', 'erg_ledger_waste_joules': 'counter',\n"
	"        'erg_ledger_storage_joules': 'gauge', 'erg_ledger_regime': 'gauge',\n"
	"        'erg_bpf_events_dropped': 'counter'}\n"
	"for n, t in want.items():\n"
	"    assert n in fams and fams[n].type == t, (n, t, sorted(fams))\n"
	"up = {s.labels['model']: s.value for s in fams['erg_worker_up'].samples}\n"
	"assert up == {'qwen-7b': 1.0, 'we\"ird\\\\name\\n': 0.0}, up\n"
	"e = {(s.labels['model'], s.labels['source']): s.value for s in fams['erg_energy_joules'].samples}\n"
	"assert e == {('qwen-7b', 'cpu'): 12.5, ('qwen-7b', 'gpu'): 3.25, ('we\"ird\\\\name\\n', 'cpu'): 0.0}, e\n"
	"b = [(s.labels['le'], s.value) for s in fams['erg_request_energy_joules'].samples if s.name.endswith('_bucket')]\n"
	"assert b[-1] == ('+Inf', 9.0) and all(x[1] <= y[1] for x, y in zip(b, b[1:])), b\n"
	"c = {s.labels['code']: s.value for s in fams['erg_requests'].samples if s.name == 'erg_requests_total'}\n"
	"assert c == {'200': 9.0, '502': 1.0}, c\n"
	"print('parsed', len(fams), 'families')\n";

/* A python3 that has the Prometheus client, or NULL. */
static const char *python_with_client(void)
{
	static const char *const candidates[] = { "python3", "/usr/bin/python3" };

	for (size_t i = 0; i < 2; i++) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "%s -c 'import prometheus_client.parser' 2>/dev/null", candidates[i]);
		if (system(cmd) == 0)
			return candidates[i];
	}
	return NULL;
}

static void prometheus_parser_reads_it_back(void **state)
{
	char text[] = "/tmp/erg-prom-XXXXXX", script[] = "/tmp/erg-prom-check-XXXXXX", cmd[256];
	const char *py = python_with_client();
	struct prom_buf b;
	int fd, rc;

	(void)state;
	if (!py) {
		print_message("SKIP: no python3 with prometheus_client (apt-get install python3-prometheus-client)\n");
		skip();
	}
	prom_buf_init(&b);
	render_sample(&b, true);
	fd = mkstemp(text);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	close(fd);
	fd = mkstemp(script);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, parse_check, strlen(parse_check)), (ssize_t)strlen(parse_check));
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s %s %s", py, script, text);
	rc = system(cmd);
	unlink(text);
	unlink(script);
	assert_int_equal(rc, 0);
	prom_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(family_sample_and_escaping),
		cmocka_unit_test(histogram_buckets_are_cumulative),
		cmocka_unit_test(families_appear_once_with_their_series),
		cmocka_unit_test(ledger_rows_from_a_live_ledger),
		cmocka_unit_test(prometheus_parser_reads_it_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
