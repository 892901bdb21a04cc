/*
 * 0008-recs: recommendation ranking on a hand-built neighbour source —
 * scores as documented in model_recs.h, seen and blocked items removed,
 * ties by id, trending fallback, and the same result from a fresh ranker
 * and one warmed up by earlier calls (a fresh process after a restart must
 * rank exactly like a long-running one).
 */
/* TERN_TEST_LINK: tern_models */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../models/model_recs.h"
#include "test.h"

#define MAX_NB 200

typedef struct fake_source {
        feat_neighbor_t nb[8][MAX_NB]; /* by seed index */
        uint32_t n_nb[8];
        char names[8][MAX_NB][16];
        feat_neighbor_t trend[4];
        const char *blocked;
} fake_source_t;

static tern_code_t fake_neighbors(void *opaque, const char *item, uint32_t len,
                                  const feat_neighbor_t **out, uint32_t *n_out,
                                  char *errstr, size_t errstr_size) {
        fake_source_t *fs = opaque;
        int seed = item[len - 1] - '0'; /* seeds are "s0".."s7" */
        (void)errstr;
        (void)errstr_size;
        *out = fs->nb[seed];
        *n_out = fs->n_nb[seed];
        return TERN_OK;
}

static void fake_trending(void *opaque, const feat_neighbor_t **out,
                          uint32_t *n_out) {
        fake_source_t *fs = opaque;
        *out = fs->trend;
        *n_out = 4;
}

static int fake_blocked(void *opaque, const char *item, uint32_t len) {
        fake_source_t *fs = opaque;
        return fs->blocked && strlen(fs->blocked) == len &&
               !memcmp(fs->blocked, item, len);
}

static void add_nb(fake_source_t *fs, int seed, const char *item,
                   double score) {
        uint32_t k = fs->n_nb[seed]++;
        snprintf(fs->names[seed][k], 16, "%s", item);
        fs->nb[seed][k] = (feat_neighbor_t){
            .item = fs->names[seed][k],
            .len = (uint32_t)strlen(item),
            .hash = feat_id_hash(item, (uint32_t)strlen(item)),
            .c = 1,
            .n = 1,
            .score = score};
}

static feat_item_ts_t window[3];
static feat_user_t user;

static void make_user(void) {
        /* Window, most recent first: s0 (now, CART), s1 (30 min ago, VIEW). */
        window[0] = (feat_item_ts_t){"s0", 2, 10000000, TERN_EV_CART};
        window[1] =
            (feat_item_ts_t){"s1", 2, 10000000 - 1800 * 1000, TERN_EV_VIEW};
        memset(&user, 0, sizeof(user));
        user.user_id = "u";
        user.user_len = 1;
        user.n_window = 2;
        user.window = window;
        user.profile.last_ts_ms = 10000000;
}

static model_recs_t *ranker(void) {
        model_recs_conf_t conf;
        model_recs_conf_default(&conf);
        conf.top_n = 3;
        return model_recs_new(&conf);
}

static void scores_as_documented(void) {
        static fake_source_t fs;
        model_nb_source_t src = {&fs, fake_neighbors, fake_trending,
                                 fake_blocked};
        model_recs_result_t res;
        model_recs_t *r = ranker();
        char errstr[256];
        memset(&fs, 0, sizeof(fs));
        make_user();
        add_nb(&fs, 0, "a", 0.5);
        add_nb(&fs, 0, "b", 0.2);
        add_nb(&fs, 0, "s1", 0.9); /* seen: never recommended */
        add_nb(&fs, 1, "a", 0.4);
        add_nb(&fs, 1, "c", 1.2);
        add_nb(&fs, 1, "x", 5.0); /* blocked */
        fs.blocked = "x";
        TEST_EQ_INT(
            model_recs_compute(r, &user, &src, &res, errstr, sizeof(errstr)),
            TERN_OK);
        /* a: 0.5*1*3 (CART boost) + 0.4*0.5 (half-life 1800 s)*1 = 1.7
         * c: 1.2*0.5 = 0.6; b: 0.2*3 = 0.6 -> tie, id ascending: b, c */
        TEST_EQ_INT(res.n, 3);
        TEST_EQ_STR(res.strategy, "co-occurrence");
        TEST_ASSERT(res.items[0].len == 1 && res.items[0].item[0] == 'a',
                    "first");
        TEST_ASSERT(fabs(res.items[0].score - 1.7) < 1e-12, "a %g",
                    res.items[0].score);
        TEST_ASSERT(res.items[1].item[0] == 'b' && res.items[2].item[0] == 'c',
                    "tie by id: %c %c", res.items[1].item[0],
                    res.items[2].item[0]);
        model_recs_destroy(r);
}

static void fresh_equals_warm(void) {
        static fake_source_t fs;
        model_nb_source_t src = {&fs, fake_neighbors, fake_trending, NULL};
        model_recs_result_t fresh, warm;
        model_recs_t *r1 = ranker(), *r2 = ranker();
        char errstr[256], name[16];
        memset(&fs, 0, sizeof(fs));
        make_user();
        /* Many candidates per seed: the candidate table must grow while
         * scores are being summed. */
        for (int k = 0; k < MAX_NB; k++) {
                snprintf(name, sizeof(name), "n%03d", k);
                add_nb(&fs, 0, name, 0.001 * k);
                snprintf(name, sizeof(name), "n%03d", MAX_NB - 1 - k);
                add_nb(&fs, 1, name, 0.001 * k);
        }
        TEST_EQ_INT(
            model_recs_compute(r2, &user, &src, &warm, errstr, sizeof(errstr)),
            TERN_OK); /* warms r2 */
        TEST_EQ_INT(
            model_recs_compute(r1, &user, &src, &fresh, errstr, sizeof(errstr)),
            TERN_OK);
        TEST_EQ_INT(
            model_recs_compute(r2, &user, &src, &warm, errstr, sizeof(errstr)),
            TERN_OK);
        TEST_EQ_INT(fresh.n, warm.n);
        for (uint32_t i = 0; i < fresh.n; i++)
                TEST_ASSERT(fresh.items[i].score == warm.items[i].score &&
                                fresh.items[i].len == warm.items[i].len &&
                                !memcmp(fresh.items[i].item, warm.items[i].item,
                                        fresh.items[i].len),
                            "rank %u differs: fresh %g warm %g", i,
                            fresh.items[i].score, warm.items[i].score);
        model_recs_destroy(r1);
        model_recs_destroy(r2);
}

static void trending_fallback(void) {
        static fake_source_t fs;
        model_nb_source_t src = {&fs, fake_neighbors, fake_trending, NULL};
        model_recs_result_t res;
        model_recs_t *r = ranker();
        char errstr[256];
        memset(&fs, 0, sizeof(fs));
        make_user();
        fs.trend[0] = (feat_neighbor_t){"s0", 2, 0, 8, 8, 8}; /* seen */
        fs.trend[1] = (feat_neighbor_t){"t1", 2, 0, 4, 4, 4};
        fs.trend[2] = (feat_neighbor_t){"t2", 2, 0, 2, 2, 2};
        fs.trend[3] = (feat_neighbor_t){"t3", 2, 0, 1, 1, 1};
        TEST_EQ_INT(
            model_recs_compute(r, &user, &src, &res, errstr, sizeof(errstr)),
            TERN_OK);
        TEST_EQ_STR(res.strategy, "trending");
        TEST_EQ_INT(res.n, 3);
        TEST_ASSERT(res.items[0].item[1] == '1' && res.items[0].score == 0.5,
                    "t1 scored n/n(top) = 0.5, got %g", res.items[0].score);
        model_recs_destroy(r);
}

/* p(click) of a candidate: c is clicked far more than a or b. */
static double fake_p_click(void *opaque, const char *item, uint32_t len) {
        (void)opaque;
        return len == 1 && item[0] == 'c' ? 0.9 : 0.1;
}

static void ctr_blend(void) {
        static fake_source_t fs;
        model_nb_source_t src = {&fs, fake_neighbors, fake_trending,
                                 fake_blocked};
        model_item_scorer_t scorer = {NULL, fake_p_click, 42};
        model_recs_result_t res;
        model_recs_conf_t conf;
        model_recs_t *r;
        char errstr[256];
        model_recs_conf_default(&conf);
        conf.top_n = 2;
        conf.ctr_weight = 1.0;
        conf.ctr_candidates = 3;
        r = model_recs_new(&conf);
        memset(&fs, 0, sizeof(fs));
        make_user();
        add_nb(&fs, 0, "a", 0.5);
        add_nb(&fs, 0, "b", 0.2);
        add_nb(&fs, 1, "a", 0.4);
        add_nb(&fs, 1, "c", 1.2);
        /* co-occurrence alone (as in scores_as_documented): a 1.7, b 0.6,
         * c 0.6 -> a, b */
        TEST_EQ_INT(model_recs_compute_blend(r, &user, &src, NULL, &res, errstr,
                                             sizeof(errstr)),
                    TERN_OK);
        TEST_ASSERT(res.n == 2 && res.items[1].item[0] == 'b', "no blend");
        /* blended: a 1 + 0.1 = 1.1, c 0.6/1.7 + 0.9 = 1.253, b 0.453 */
        TEST_EQ_INT(model_recs_compute_blend(r, &user, &src, &scorer, &res,
                                             errstr, sizeof(errstr)),
                    TERN_OK);
        TEST_EQ_INT(res.n, 2);
        TEST_ASSERT(res.items[0].item[0] == 'c' && res.items[1].item[0] == 'a',
                    "blend order %c %c", res.items[0].item[0],
                    res.items[1].item[0]);
        TEST_ASSERT(fabs(res.items[0].score - (0.6 / 1.7 + 0.9)) < 1e-12,
                    "c %g", res.items[0].score);
        TEST_ASSERT(fabs(res.items[1].score - 1.1) < 1e-12, "a %g",
                    res.items[1].score);
        model_recs_destroy(r);
}

TEST_MAIN(TEST_CASE(scores_as_documented), TEST_CASE(ctr_blend),
          TEST_CASE(fresh_equals_warm), TEST_CASE(trending_fallback));
