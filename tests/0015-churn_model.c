/*
 * 0015-churn_model: the churn model's math — features, one SGD step by
 * hand, batched (sgemv) scores equal to single ones, learning a separable
 * stream, reasons, alert hysteresis and cool-down, encode/decode round
 * trips that continue exactly.
 */
/* TERN_TEST_LINK: tern_models */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../models/model_churn.h"
#include "test.h"

#define DAY 86400000LL

static uint64_t rng_state;
static double rnd(void) { /* xorshift64*, fixed seeds */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (double)((rng_state * 2685821657736338717ULL) >> 11) /
               9007199254740992.0;
}

static model_churn_t *new_model(void) {
        model_churn_conf_t c;
        model_churn_conf_default(&c);
        c.inactive_days = 28;
        c.learning_rate = 0.05;
        return model_churn_new(&c);
}

static void act(model_churn_t *m, model_churn_activity_t *a, int64_t ts,
                tern_event_type_t type) {
        tern_event_t ev;
        tern_event_clear(&ev);
        ev.type = type;
        ev.ts_ms = ts;
        ev.has_price = 1;
        ev.price = 10;
        model_churn_observe(m, a, &ev, NULL);
}

static void test_features(void) {
        model_churn_t *m = new_model();
        model_churn_activity_t a;
        float x[MODEL_CHURN_DIM];
        memset(&a, 0, sizeof(a));
        act(m, &a, 0, TERN_EV_VIEW);
        model_churn_features(m, &a, 14 * DAY, x);
        TEST_ASSERT(fabs(x[0] - log1p(14)) < 1e-6, "silence %g", x[0]);
        TEST_ASSERT(x[13] == 1.0f, "first visit");
        TEST_ASSERT(fabs(x[12] - 0.5) < 1e-6, "window elapsed %g", x[12]);
        /* usual gap unknown: inactive/2 = 14 days -> ratio 1 */
        TEST_ASSERT(fabs(x[6] - log1p(1.0)) < 1e-6, "gap ratio %g", x[6]);
        /* freq_mid: one visit, half-life 28 days, 14 days later */
        TEST_ASSERT(fabs(x[3] - log1p(exp2(-0.5))) < 1e-6, "freq %g", x[3]);
        act(m, &a, 2 * DAY, TERN_EV_CART);
        act(m, &a, 2 * DAY + 60000, TERN_EV_VIEW); /* same visit */
        model_churn_features(m, &a, 4 * DAY, x);
        TEST_EQ_INT(a.visits, 2);
        TEST_EQ_INT(a.events, 3);
        TEST_ASSERT(x[13] == 0.0f, "second visit");
        TEST_ASSERT(fabs(x[1] - log1p(2)) < 1e-6, "prev gap %g", x[1]);
        /* silence 2 days - 1 minute over a usual gap of 2 days */
        TEST_ASSERT(fabs(x[6] - log1p((2 * DAY - 60000) / (double)(2 * DAY))) <
                        1e-6,
                    "gap ratio %g", x[6]);
        TEST_ASSERT(x[8] == (float)log1p(1), "cart without purchase");
        act(m, &a, 5 * DAY, TERN_EV_PURCHASE);
        TEST_EQ_INT(a.carts_since_purchase, 0);
        TEST_EQ_INT(a.purchases, 1);
        TEST_ASSERT(a.spend == 10, "spend %g", a.spend);
        TEST_ASSERT(model_churn_is_activity(
                        &(tern_event_t){.type = TERN_EV_IMPRESSION}) == 0,
                    "an impression is not activity");
        model_churn_destroy(m);
}

static void test_sgd_step(void) {
        model_churn_t *m = new_model();
        float x[MODEL_CHURN_DIM] = {0};
        double p, p2, sd = sqrt(1.1);
        char want[64];
        model_churn_metrics_t mt;
        tern_buf_t after;
        x[0] = 1.0f;
        x[10] = 2.0f;
        /* no statistics yet: z = x / sqrt(1 + 0.1) */
        model_churn_score(m, x, 1, &p);
        /* the prior: bias 1 (churn the likelier label) */
        TEST_ASSERT(fabs(p - 1 / (1 + exp(-(1 + (0.4 * 1 - 0.3 * 2) / sd)))) <
                        1e-6,
                    "p %g", p);
        /* now mean = x, n = 1: var 1, z = 0: the logit is the bias */
        tern_buf_init(&after, 1 << 20);
        double loss = model_churn_learn(m, x, p, 1);
        TEST_ASSERT(fabs(loss + log(p)) < 1e-12, "loss %g", loss);
        /* g = 1 - sigmoid(1); bias += 10 * 0.05 * g */
        model_churn_score(m, x, 1, &p2);
        model_churn_weights_json(m, &after);
        snprintf(want, sizeof(want), "\"bias\":%.17g",
                 1.0 + 0.05 * 10.0 * (1.0 - 1 / (1 + exp(-1.0))));
        TEST_ASSERT(strstr((const char *)after.data, want) != NULL, "%.*s",
                    (int)after.len, after.data);
        TEST_EQ_INT(model_churn_version(m), 1);
        model_churn_metrics(m, &mt);
        TEST_EQ_INT(mt.scored, 2);
        TEST_EQ_INT(mt.labelled, 1);
        tern_buf_free(&after);
        model_churn_destroy(m);
}

static void random_x(float *x) {
        for (int i = 0; i < MODEL_CHURN_DIM; i++)
                x[i] = (float)(rnd() * 3);
}

static void test_batch_equals_single(void) {
        model_churn_t *a = new_model(), *b = new_model();
        float x[64 * MODEL_CHURN_DIM];
        double pa[64], pb;
        tern_buf_t snap;
        rng_state = 11;
        tern_buf_init(&snap, 1 << 20);
        for (int r = 0; r < 10; r++) { /* some statistics first */
                random_x(x);
                model_churn_score(a, x, 1, pa);
        }
        model_churn_encode(a, &snap);
        for (int r = 0; r < 64; r++)
                random_x(x + r * MODEL_CHURN_DIM);
        model_churn_score(a, x, 64, pa);
        /* each row alone, by a model in the state a had before the batch */
        for (int r = 0; r < 64; r++) {
                TEST_EQ_INT(model_churn_decode(b, snap.data, snap.len), 0);
                model_churn_score(b, x + r * MODEL_CHURN_DIM, 1, &pb);
                TEST_ASSERT(fabs(pa[r] - pb) < 1e-6, "row %d: %.9g %.9g", r,
                            pa[r], pb);
        }
        tern_buf_free(&snap);
        model_churn_destroy(a);
        model_churn_destroy(b);
}

/* y = 1 when silence (x0) is long and visits (x11) few, noisy. */
static int synth_label(const float *x) {
        double s = 1.5 * x[0] - 1.2 * x[11] + 0.3 * (rnd() - 0.5);
        return s > 0.4;
}

static void test_learns(void) {
        model_churn_t *m = new_model();
        model_churn_metrics_t mt;
        float x[MODEL_CHURN_DIM];
        double p;
        rng_state = 7;
        for (int k = 0; k < 20000; k++) {
                random_x(x);
                model_churn_score(m, x, 1, &p);
                model_churn_learn(m, x, p, synth_label(x));
        }
        model_churn_metrics(m, &mt);
        TEST_ASSERT(mt.auc > 0.9, "auc %g", mt.auc);
        TEST_ASSERT(mt.logloss < 0.45, "logloss %g", mt.logloss);
        TEST_EQ_INT(mt.labelled, 20000);
        model_churn_destroy(m);
}

static void test_reasons(void) {
        model_churn_t *m = new_model();
        float x[MODEL_CHURN_DIM] = {0}, big[MODEL_CHURN_DIM] = {0};
        int idx[MODEL_CHURN_REASONS];
        double c[MODEL_CHURN_REASONS], p;
        model_churn_score(m, x, 1, &p); /* mean 0 */
        model_churn_score(m, x, 1, &p);
        big[0] = 3;  /* silence: prior +0.4 */
        big[6] = 2;  /* gap ratio: +0.4 */
        big[11] = 1; /* visits: -0.3, pushes risk down */
        big[13] = 1; /* first visit +0.3 */
        model_churn_reasons(m, big, idx, c);
        TEST_EQ_STR(model_churn_feature_names[idx[0]], "silence_days");
        TEST_EQ_STR(model_churn_feature_names[idx[1]], "gap_ratio");
        TEST_EQ_STR(model_churn_feature_names[idx[2]], "first_visit");
        TEST_ASSERT(c[0] >= c[1] && c[1] >= c[2] && c[2] > 0, "%g %g %g", c[0],
                    c[1], c[2]);
        model_churn_destroy(m);
}

static void test_alert_hysteresis(void) {
        model_churn_alert_conf_t c = {0.8, 0.6, 10 * DAY};
        model_churn_alert_state_t s = {.armed = 1};
        double prev;
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.5, 0, &prev), 0);
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.85, DAY, &prev), 1);
        TEST_ASSERT(prev == 0.5, "prev %g", prev);
        /* still high, or dipping but not below the re-arm level: no alert */
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.9, 2 * DAY, &prev), 0);
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.7, 3 * DAY, &prev), 0);
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.85, 4 * DAY, &prev), 0);
        /* re-armed below 0.6, but the cool-down holds the next one ... */
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.5, 5 * DAY, &prev), 0);
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.9, 6 * DAY, &prev), 0);
        /* ... until 10 days after the first */
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.9, 11 * DAY, &prev), 1);
        TEST_ASSERT(prev == 0.9, "prev %g", prev);
        TEST_EQ_INT(model_churn_alert_step(&c, &s, 0.95, 30 * DAY, &prev), 0);
}

static void test_encode_decode(void) {
        model_churn_t *m = new_model(), *r = new_model();
        tern_buf_t a, b;
        float x[MODEL_CHURN_DIM];
        double p1, p2;
        rng_state = 3;
        for (int k = 0; k < 500; k++) {
                random_x(x);
                model_churn_score(m, x, 1, &p1);
                model_churn_learn(m, x, p1, synth_label(x));
        }
        model_churn_boost(m, 5, 100);
        tern_buf_init(&a, 1 << 20);
        tern_buf_init(&b, 1 << 20);
        model_churn_encode(m, &a);
        TEST_EQ_INT(model_churn_decode(r, a.data, a.len), 0);
        model_churn_encode(r, &b);
        TEST_ASSERT(a.len == b.len && !memcmp(a.data, b.data, a.len),
                    "re-encoded differs");
        /* and both continue identically */
        for (int k = 0; k < 200; k++) {
                random_x(x);
                model_churn_score(m, x, 1, &p1);
                model_churn_score(r, x, 1, &p2);
                TEST_ASSERT(p1 == p2, "%g %g", p1, p2);
                model_churn_learn(m, x, p1, k & 1);
                model_churn_learn(r, x, p2, k & 1);
        }
        TEST_ASSERT(model_churn_decode(r, a.data, a.len - 1) == -1,
                    "a truncated record");
        a.data[0] = 9;
        TEST_ASSERT(model_churn_decode(r, a.data, a.len) == -1,
                    "unknown version");
        tern_buf_free(&a);
        tern_buf_free(&b);
        model_churn_destroy(m);
        model_churn_destroy(r);
}

TEST_MAIN(TEST_CASE(test_features), TEST_CASE(test_sgd_step),
          TEST_CASE(test_batch_equals_single), TEST_CASE(test_learns),
          TEST_CASE(test_reasons), TEST_CASE(test_alert_hysteresis),
          TEST_CASE(test_encode_decode));
