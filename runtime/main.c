/*
 * tern — streaming event processing for e-commerce precision marketing.
 * main(): dispatch to a subcommand (runtime/cmd_*.c).
 */
#include <stdio.h>
#include <string.h>

#include "rt_cmd.h"

static const rt_cmd_t *const commands[] = {
    &rt_cmd_demo,    &rt_cmd_run,    &rt_cmd_broker,
    &rt_cmd_produce, &rt_cmd_replay, &rt_cmd_inspect,
    &rt_cmd_bench,   &rt_cmd_config, &rt_cmd_control,
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out) {
        fprintf(out, "usage: tern COMMAND [options]\n"
                     "\n"
                     "tern reads shop behaviour events from Kafka, keeps "
                     "profiles and item\n"
                     "co-occurrence in RocksDB and publishes refreshed "
                     "recommendations.\n"
                     "\n"
                     "commands:\n");
        for (size_t i = 0; i < N_COMMANDS; i++)
                fprintf(out, "  %-9s %s\n", commands[i]->name,
                        commands[i]->summary);
        fprintf(
            out,
            "\n'tern COMMAND --help' describes a command; 'tern --version'.\n");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
                printf("tern %s\n", TERN_VERSION);
                return 0;
        }
        for (size_t i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[1], commands[i]->name))
                        return commands[i]->main(argc - 1, argv + 1);
        fprintf(stderr, "tern: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
}
