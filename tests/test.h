/*
 * test.h — the one small harness every numbered test uses.
 *
 * A test file defines test functions and a `TEST_LIST` array; the harness
 * main runs each, prints "ok"/"FAIL" lines and the closing
 * "N passed, N failed" line that CI reads. TEST_ASSERT records a failure
 * with file:line and returns from the current test function.
 *
 * Paths: TERN_SOURCE_DIR (the repo) and TERN_BINARY_DIR (the build) are
 * compile definitions; tern_test_data_dir() finds ../shared/data or
 * returns NULL (tests then call TEST_SKIP with a message).
 */
#ifndef TERN_TEST_H
#define TERN_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int test_failed_flag;
extern int test_skipped_flag;

#define TEST_ASSERT(cond, ...)                                                 \
        do {                                                                   \
                if (!(cond)) {                                                 \
                        fprintf(stderr,                                        \
                                "  %s:%d: assertion failed: %s: ", __FILE__,   \
                                __LINE__, #cond);                              \
                        fprintf(stderr, " " __VA_ARGS__);                      \
                        fprintf(stderr, "\n");                                 \
                        test_failed_flag = 1;                                  \
                        return;                                                \
                }                                                              \
        } while (0)

#define TEST_EQ_INT(a, b)                                                      \
        TEST_ASSERT((long long)(a) == (long long)(b), "%lld != %lld",          \
                    (long long)(a), (long long)(b))
#define TEST_EQ_STR(a, b)                                                      \
        TEST_ASSERT(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))

#define TEST_SKIP(...)                                                         \
        do {                                                                   \
                fprintf(stderr, "  skipped: ");                                \
                fprintf(stderr, __VA_ARGS__);                                  \
                fprintf(stderr, "\n");                                         \
                test_skipped_flag = 1;                                         \
                return;                                                        \
        } while (0)

typedef struct test_case {
        const char *name;
        void (*fn)(void);
} test_case_t;

#define TEST_CASE(fn)                                                          \
        { #fn, fn }

/* Defined by each test file. */
extern const test_case_t TEST_LIST[];
extern const size_t TEST_COUNT;
#define TEST_MAIN(...)                                                         \
        const test_case_t TEST_LIST[] = {__VA_ARGS__};                         \
        const size_t TEST_COUNT = sizeof(TEST_LIST) / sizeof(TEST_LIST[0])

/* A fresh empty directory under the build tree; caller frees. */
char *test_tmpdir(const char *tag);
const char *tern_test_data_dir(void);

#endif
