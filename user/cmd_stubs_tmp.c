/* Placeholder entry points until the subcommands land (removed then). */
#include <stdio.h>
#include "commands.h"
