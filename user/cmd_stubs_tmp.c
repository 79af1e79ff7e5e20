/* Placeholder entry points until the subcommands land (removed then). */
#include <stdio.h>
#include "commands.h"
int cmd_sim(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "erg sim: not built yet\n"); return 2; }
int cmd_ledger(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "erg ledger: not built yet\n"); return 2; }
