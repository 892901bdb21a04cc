#include "test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

int test_failed_flag;
int test_skipped_flag;

char *test_tmpdir(const char *tag) {
        char *path = malloc(4096);
        char cmd[4200];
        snprintf(path, 4096, "%s/tmp/%s-%d", TERN_BINARY_DIR, tag,
                 (int)getpid());
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", path, path);
        if (system(cmd) != 0) {
                fprintf(stderr, "cannot create %s\n", path);
                exit(1);
        }
        return path;
}

const char *tern_test_data_dir(void) {
        static char path[4096];
        struct stat st;
        const char *env = getenv("TERN_DATA_DIR");
        if (env && stat(env, &st) == 0)
                return env;
        snprintf(path, sizeof(path), "%s/../shared/data", TERN_SOURCE_DIR);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return path;
        return NULL;
}

int main(int argc, char **argv) {
        int passed = 0, failed = 0, skipped = 0;
        for (size_t i = 0; i < TEST_COUNT; i++) {
                if (argc > 1 && !strstr(TEST_LIST[i].name, argv[1]))
                        continue;
                test_failed_flag = 0;
                test_skipped_flag = 0;
                TEST_LIST[i].fn();
                if (test_failed_flag) {
                        printf("FAIL %s\n", TEST_LIST[i].name);
                        failed++;
                } else if (test_skipped_flag) {
                        printf("skip %s\n", TEST_LIST[i].name);
                        skipped++;
                } else {
                        printf("ok   %s\n", TEST_LIST[i].name);
                        passed++;
                }
                fflush(stdout);
        }
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
        return failed ? 1 : 0;
}
