/* erg: energy-aware routing for large reasoning models. Dispatches to the
 * subcommands of commands.h. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "top",    cmd_top,    "attach to running inference workers and print per-model energy live" },
	{ "serve",  cmd_serve,  "proxy OpenAI-style requests to the model workers on io_uring, measuring each request" },
	{ "sim",    cmd_sim,    "simulate supply, demand and routing policies from a scenario (docs/theory.md §1-§5)" },
	{ "calibrate", cmd_calibrate, "measure J/token per model worker, fit eta (docs/theory.md §1), write a scenario" },
	{ "ledger", cmd_ledger, "summarise or replay a supply-ledger journal written by erg top --journal" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: erg COMMAND [OPTIONS]\n\n"
		     "erg measures the energy of LLM / reasoning-model inference workers with BPF,\n"
		     "keeps a ledger of that demand against an energy supply, and models routing.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'erg COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	char q[80];

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "erg: unknown command '%s' (see 'erg --help')\n", cli_quote(argv[1], q, sizeof(q)));
	return 2;
}
