/*
 * 0038-churn_timers: the churn state's timer heaps stay bounded by the
 * number of users however often users are re-indexed (each re-index used
 * to leave a stale entry until its due time passed: one per scored event),
 * and popping still yields every user once, at its latest due time, in
 * (due, user id) order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/rt_churn_state.h"
#include "test.h"

#define USERS    500
#define ROUNDS   200
#define INACTIVE 1000

static void reindex_bounded(void) {
        rt_churn_state_t *s = rt_churn_state_new(INACTIVE);
        rt_churn_user_t *u[USERS];
        int64_t last = -1;
        uint32_t popped = 0;
        char id[16];
        TEST_ASSERT(s != NULL, "new");
        if (!s)
                return;
        for (int i = 0; i < USERS; i++) {
                int n = snprintf(id, sizeof(id), "u%04d", i);
                u[i] = rt_churn_state_get(s, i % 2, id, (uint32_t)n, 1);
                TEST_ASSERT(u[i] != NULL, "user %d", i);
                if (!u[i])
                        goto out;
        }
        /* Every round moves every user's sweep later: a soak's pattern. */
        for (int r = 1; r <= ROUNDS; r++)
                for (int i = 0; i < USERS; i++) {
                        u[i]->next_sweep = 1000000 + r * 1000 + (i % 7);
                        rt_churn_state_touch(s, u[i]);
                        TEST_ASSERT(
                            rt_churn_state_timers(s) <= 2 * USERS + 4096 + 1,
                            "%llu timer entries for %d users",
                            (unsigned long long)rt_churn_state_timers(s),
                            USERS);
                }
        for (int p = 0; p < 2; p++) {
                rt_churn_user_t *x;
                last = -1;
                while ((x = rt_churn_state_pop_due(s, p, INT64_MAX - 1))) {
                        TEST_EQ_INT(x->partition, p);
                        TEST_EQ_INT(x->next_sweep,
                                    1000000 + ROUNDS * 1000 +
                                        (atoi(x->user_id + 1) % 7));
                        TEST_ASSERT(x->next_sweep >= last, "order");
                        last = x->next_sweep;
                        popped++;
                }
        }
        TEST_EQ_INT(popped, USERS);
        TEST_EQ_INT(rt_churn_state_timers(s), 0);
out:
        rt_churn_state_destroy(s);
}

TEST_MAIN(TEST_CASE(reindex_bounded));
