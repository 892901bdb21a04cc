/*
 * tern — streaming event processing for e-commerce precision marketing.
 * main(): dispatch to a subcommand (runtime/cmd_*.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

/* glibc's malloc gives each thread that contends an arena of its own (up
 * to 8 per core), and raises its mmap threshold (up to 32 MiB) each time a
 * large mmapped block is freed, so later large blocks come from an arena
 * and stay there when freed. RocksDB's compaction and flush threads
 * allocate and free MiB-sized buffers: in a 2,000 events/s soak a
 * quarter of malloc's held memory was free, much of it in large chunks in
 * those threads' arenas. Two arenas and a fixed threshold (blocks of 128
 * KiB and more are mmapped and returned on free) keep what is freed
 * reusable. An operator's GLIBC_TUNABLES or MALLOC_* variables win. */
static void malloc_policy(void) {
#if defined(__GLIBC__)
        if (getenv("GLIBC_TUNABLES") || getenv("MALLOC_ARENA_MAX") ||
            getenv("MALLOC_MMAP_THRESHOLD_"))
                return;
        mallopt(M_ARENA_MAX, 2);
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

int main(int argc, char **argv) {
        malloc_policy();
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
