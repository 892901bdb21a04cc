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
 * large mmapped block is freed, so later large blocks are carved from an
 * arena and stay there when freed. RocksDB's compaction and flush threads
 * allocate and free MiB-sized buffers: in a 2,000 events/s soak, memory
 * free inside the arenas grew from 25 to 140 MiB in 47 minutes while the
 * memory in use stayed flat. Two arenas, and a fixed threshold (blocks of
 * 128 KiB and more mmapped unless a free chunk fits), keep it reusable.
 * Each setting yields to the operator's own: MALLOC_ARENA_MAX or
 * glibc.malloc.arena_max, MALLOC_MMAP_THRESHOLD_ or
 * glibc.malloc.mmap_threshold in GLIBC_TUNABLES. */
static int operator_sets(const char *env, const char *tunable) {
        const char *tunables = getenv("GLIBC_TUNABLES");
        return getenv(env) || (tunables && strstr(tunables, tunable));
}

static void malloc_policy(void) {
#if defined(__GLIBC__)
        if (!operator_sets("MALLOC_ARENA_MAX", "glibc.malloc.arena_max"))
                mallopt(M_ARENA_MAX, 2);
        if (!operator_sets("MALLOC_MMAP_THRESHOLD_",
                           "glibc.malloc.mmap_threshold"))
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
