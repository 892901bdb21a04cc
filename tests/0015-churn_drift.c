/*
 * 0015-churn_drift: the drift detectors on synthetic streams with fixed
 * seeds — Page-Hinkley on a logloss stream and PSI on a score stream:
 * an abrupt change is detected within a bounded number of events after
 * it, never before; the same streams without the change (same length,
 * several seeds) raise nothing; a detector restored from its encoding
 * mid-stream continues exactly.
 */
/* TERN_TEST_LINK: tern_models */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../models/model_drift.h"
#include "test.h"

#define N      40000
#define CHANGE 20000

static uint64_t rng_state;
static double rnd(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (double)((rng_state * 2685821657736338717ULL) >> 11) /
               9007199254740992.0;
}

/* A calibrated model's logloss: p uniform in [0.1, 0.9], y ~ Bernoulli(p);
 * after the change the labels no longer follow p (y ~ Bernoulli(0.5)). */
static double logloss_at(int k, int with_change) {
        double p = 0.1 + 0.8 * rnd();
        double q = with_change && k >= CHANGE ? 0.5 : p;
        int y = rnd() < q;
        return y ? -log(p) : -log(1 - p);
}

/* Index of the first detection, -1 for none. */
static int run_ph(uint64_t seed, int with_change, int *count) {
        model_drift_conf_t c;
        model_drift_t *d;
        model_drift_event_t ev;
        int first = -1;
        model_drift_conf_default(&c);
        d = model_drift_new(&c);
        rng_state = seed;
        *count = 0;
        for (int k = 0; k < N; k++)
                if (model_drift_on_label(d, logloss_at(k, with_change), k,
                                         &ev)) {
                        if (first < 0)
                                first = k;
                        (*count)++;
                }
        model_drift_destroy(d);
        return first;
}

static void test_page_hinkley(void) {
        for (uint64_t seed = 1; seed <= 5; seed++) {
                int count, at = run_ph(seed * 7919, 0, &count);
                TEST_ASSERT(at < 0,
                            "seed %llu: stationary stream alarmed at %d",
                            (unsigned long long)seed, at);
                at = run_ph(seed * 7919, 1, &count);
                TEST_ASSERT(at >= CHANGE,
                            "seed %llu: alarm at %d before the "
                            "change at %d",
                            (unsigned long long)seed, at, CHANGE);
                TEST_ASSERT(at - CHANGE <= 600,
                            "seed %llu: detected %d events after the change",
                            (unsigned long long)seed, at - CHANGE);
        }
}

static void test_page_hinkley_event(void) {
        model_drift_conf_t c;
        model_drift_t *d;
        model_drift_event_t ev;
        int k;
        model_drift_conf_default(&c);
        d = model_drift_new(&c);
        rng_state = 99;
        for (k = 0; k < N; k++)
                if (model_drift_on_label(d, logloss_at(k, 1), 1000 + k, &ev))
                        break;
        TEST_ASSERT(k < N, "no detection");
        TEST_EQ_STR(ev.detector, "page_hinkley");
        TEST_ASSERT(ev.statistic > ev.threshold, "%g", ev.statistic);
        TEST_EQ_INT(ev.reference_start, 1000);
        TEST_EQ_INT(ev.current_end, 1000 + k);
        /* the estimated change point is near the real one */
        TEST_ASSERT(llabs(ev.current_start - (1000 + CHANGE)) < 2000,
                    "change point estimated at %lld",
                    (long long)ev.current_start - 1000);
        TEST_EQ_INT(model_drift_count(d), 1);
        model_drift_destroy(d);
}

/* Scores: a mixture of two bumps; after the change the high bump grows. */
static double score_at(int k, int with_change) {
        double hi = with_change && k >= CHANGE ? 0.6 : 0.3;
        double u = rnd(), v = rnd();
        return u < hi ? 0.7 + 0.25 * v : 0.05 + 0.3 * v;
}

static void test_psi(void) {
        model_drift_conf_t c;
        model_drift_event_t ev;
        model_drift_conf_default(&c);
        c.psi_window = 2000;
        for (int with_change = 0; with_change < 2; with_change++) {
                model_drift_t *d = model_drift_new(&c);
                int first = -1, count = 0;
                rng_state = 4242;
                for (int k = 0; k < N; k++) {
                        /* warm-up: nothing before 1000 labels */
                        uint64_t labelled = k < 500 ? 0 : 5000;
                        if (model_drift_on_score(d, score_at(k, with_change), k,
                                                 labelled, &ev)) {
                                if (first < 0)
                                        first = k;
                                count++;
                        }
                }
                if (!with_change) {
                        TEST_ASSERT(count == 0, "stationary: %d PSI alarms",
                                    count);
                } else {
                        TEST_ASSERT(first >= CHANGE &&
                                        first < CHANGE + 2 * 2000,
                                    "PSI alarm at %d", first);
                        TEST_EQ_STR(ev.detector, "psi");
                        TEST_EQ_INT(ev.reference_start, 500);
                }
                model_drift_destroy(d);
        }
}

static void test_encode_continues(void) {
        model_drift_conf_t c;
        model_drift_t *a, *b;
        model_drift_event_t ea, eb;
        tern_buf_t buf, again;
        model_drift_conf_default(&c);
        c.psi_window = 1000;
        a = model_drift_new(&c);
        b = model_drift_new(&c);
        tern_buf_init(&buf, 1 << 20);
        tern_buf_init(&again, 1 << 20);
        rng_state = 5;
        for (int k = 0; k < CHANGE - 100; k++) {
                model_drift_on_label(a, logloss_at(k, 1), k, &ea);
                model_drift_on_score(a, score_at(k, 1), k, 5000, &ea);
        }
        model_drift_encode(a, &buf);
        TEST_EQ_INT(model_drift_decode(b, buf.data, buf.len), 0);
        model_drift_encode(b, &again);
        TEST_ASSERT(buf.len == again.len &&
                        !memcmp(buf.data, again.data, buf.len),
                    "re-encoded differs");
        for (int k = CHANGE - 100; k < N; k++) {
                double l = logloss_at(k, 1), s = score_at(k, 1);
                int ra = model_drift_on_label(a, l, k, &ea);
                int rb = model_drift_on_label(b, l, k, &eb);
                TEST_EQ_INT(ra, rb);
                ra = model_drift_on_score(a, s, k, 5000, &ea);
                rb = model_drift_on_score(b, s, k, 5000, &eb);
                TEST_EQ_INT(ra, rb);
        }
        TEST_ASSERT(model_drift_count(a) > 0, "no drift at all");
        TEST_EQ_INT(model_drift_count(a), model_drift_count(b));
        TEST_ASSERT(model_drift_decode(b, buf.data, buf.len - 2) == -1,
                    "truncated");
        tern_buf_free(&buf);
        tern_buf_free(&again);
        model_drift_destroy(a);
        model_drift_destroy(b);
}

TEST_MAIN(TEST_CASE(test_page_hinkley), TEST_CASE(test_page_hinkley_event),
          TEST_CASE(test_psi), TEST_CASE(test_encode_continues));
