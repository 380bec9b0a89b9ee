/*
 * replay.c - the replay window against the Linux module's counter table
 * (wireguard-linux-compat src/selftest/counter.c, as copied into
 * ../shared/testdata/replay-window-table.json) and its six loops.
 */
#include <stdbool.h>
#include <stdint.h>

#include "../replay.h"
#include "selftest.h"

#define W ((uint64_t)COUNTER_WINDOW_SIZE)
#define L (W + 1)
#define R REJECT_AFTER_MESSAGES

struct step {
    uint64_t counter;
    bool accept;
};

static const struct step table[] = {
    { 0, true }, { 1, true }, { 1, false }, { 9, true }, { 8, true }, { 7, true },
    { 7, false }, { L, true }, { L - 1, true }, { L - 1, false }, { L - 2, true },
    { 2, true }, { 2, false }, { L + 16, true }, { 3, false }, { L + 16, false },
    { L * 4, true }, { L * 4 - (L - 1), true }, { 10, false }, { L * 4 - L, false },
    { L * 4 - (L + 1), false }, { L * 4 - (L - 2), true }, { L * 4 + 1 - L, false },
    { 0, false }, { R, false }, { R - 1, true }, { R, false }, { R - 1, false },
    { R - 2, true }, { R + 1, false }, { R + 2, false }, { R - 2, false },
    { R - 3, true }, { 0, false },
};

static struct wg_replay r;

static void expect(uint64_t counter, bool accept, const char *where)
{
    bool got = wg_replay_check(&r, counter, R);
    CHECK(got == accept, "%s: counter %llu: got %d", where, (unsigned long long)counter, got);
}

static void loops(void)
{
    wg_replay_init(&r);
    for (uint64_t i = 1; i <= W; i++)
        expect(i, true, "loop 1");
    expect(0, true, "loop 1");
    expect(0, false, "loop 1");

    wg_replay_init(&r);
    for (uint64_t i = 2; i <= W + 1; i++)
        expect(i, true, "loop 2");
    expect(1, true, "loop 2");
    expect(0, false, "loop 2");

    wg_replay_init(&r);
    for (uint64_t i = W + 1; i-- > 0;)
        expect(i, true, "loop 3");

    wg_replay_init(&r);
    for (uint64_t i = W + 2; i-- > 1;)
        expect(i, true, "loop 4");
    expect(0, false, "loop 4");

    wg_replay_init(&r);
    for (uint64_t i = W + 1; i-- > 1;)
        expect(i, true, "loop 5");
    expect(W + 1, true, "loop 5");
    expect(0, false, "loop 5");

    wg_replay_init(&r);
    for (uint64_t i = W + 1; i-- > 1;)
        expect(i, true, "loop 6");
    expect(0, true, "loop 6");
    expect(W + 1, true, "loop 6");
}

/* With no limit below 2^64 (the function takes any), counters in the top
 * window's worth must not wrap the "too old" test (found by replay_fuzz). */
static void top_of_range(void)
{
    uint64_t top = UINT64_MAX - 8;

    wg_replay_init(&r);
    CHECK(wg_replay_check(&r, top - 3 * W, UINT64_MAX), "far below the top");
    CHECK(wg_replay_check(&r, top, UINT64_MAX), "the top's last window");
    CHECK(wg_replay_check(&r, top - 5, UINT64_MAX), "behind it, in the window");
    CHECK(!wg_replay_check(&r, top, UINT64_MAX), "a replay at the top");
    CHECK(!wg_replay_check(&r, top - W - 2, UINT64_MAX), "too old");
    CHECK(!wg_replay_check(&r, UINT64_MAX, UINT64_MAX), "at the limit");
}

void selftest_replay(void)
{
    wg_replay_init(&r);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        char where[32];
        snprintf(where, sizeof(where), "table step %zu", i + 1);
        expect(table[i].counter, table[i].accept, where);
    }
    loops();
    top_of_range();
}
