/* Subcommands of the erg program. Each lives in user/cmd_<name>.c and
 * returns the process exit status: 0 ok, 1 runtime failure, 2 usage/setup
 * error (a one-line message naming the problem and the fix was printed). */
#ifndef ERG_COMMANDS_H
#define ERG_COMMANDS_H

int cmd_top(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
