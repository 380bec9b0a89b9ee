/*
 * replay_fuzz.c - libFuzzer driver for the replay window (replay.c), against
 * the window's definition kept as a set, as tests/c/test_replay.py does in
 * Python: with `greatest` one past the highest counter accepted, a counter is
 * accepted iff it is below the limit, never accepted before, and not too old
 * (counter + 1 + W >= greatest). No bitmap arithmetic in the model.
 *
 * Input: a byte choosing the limit (REJECT_AFTER_MESSAGES, a small one, any,
 * or UINT64_MAX), a byte choosing where counters start (0, below the limit,
 * anywhere, the top of the 64-bit range), then one step per byte and its
 * operand: a small move around the highest counter so far, a step around the
 * window's far edge, any counter, an earlier counter again, or jumps by whole
 * bitmap words either way.
 */
#include <stdbool.h>
#include <stdint.h>

#include "../replay.h"
#include "fuzz.h"

#define MAX_STEPS 4096
#define SET_SLOTS 8192                  /* a power of two, twice MAX_STEPS */
#define W ((uint64_t)COUNTER_WINDOW_SIZE)
#define R REJECT_AFTER_MESSAGES

/* The set of accepted counters: open addressing, no deletion. */
static uint64_t set_key[SET_SLOTS];
static uint32_t set_stamp[SET_SLOTS], stamp;

static bool set_add(uint64_t k)
{
    uint32_t i = (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 51) & (SET_SLOTS - 1);

    while (set_stamp[i] == stamp) {
        if (set_key[i] == k)
            return false;
        i = (i + 1) & (SET_SLOTS - 1);
    }
    set_stamp[i] = stamp;
    set_key[i] = k;
    return true;
}

static bool set_has(uint64_t k)
{
    uint32_t i = (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 51) & (SET_SLOTS - 1);

    while (set_stamp[i] == stamp) {
        if (set_key[i] == k)
            return true;
        i = (i + 1) & (SET_SLOTS - 1);
    }
    return false;
}

struct model {
    uint64_t greatest;                  /* one past the highest accepted, 0: none */
};

static bool model_check(struct model *m, uint64_t counter, uint64_t limit)
{
    /* counter + 1 + W can wrap only for counters at the very top, which the
     * limit (at most UINT64_MAX) refuses first unless the limit is
     * UINT64_MAX; then compare without the wrap. */
    if (counter >= limit)
        return false;
    if (counter < UINT64_MAX - W && counter + 1 + W < m->greatest)
        return false;
    if (set_has(counter))
        return false;
    set_add(counter);
    if (counter + 1 > m->greatest)
        m->greatest = counter + 1;
    return true;
}

static uint64_t add_clamped(uint64_t a, int64_t d)
{
    if (d < 0)
        return (uint64_t)-d > a ? 0 : a - (uint64_t)-d;
    return UINT64_MAX - a < (uint64_t)d ? UINT64_MAX : a + (uint64_t)d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    static uint64_t history[MAX_STEPS];
    struct wg_replay window;
    struct model m = { 0 };
    uint64_t limit, top;
    size_t steps = 0;

    if (++stamp == 0) {
        memset(set_stamp, 0, sizeof(set_stamp));
        stamp = 1;
    }
    switch (fz_u8(&in) % 4) {
    case 0: limit = R; break;
    case 1: limit = (uint64_t)fz_u16(&in) + 1; break;
    case 2: limit = fz_u64(&in); break;
    default: limit = UINT64_MAX; break;
    }
    switch (fz_u8(&in) % 4) {
    case 0: top = 0; break;
    case 1: top = limit > 3 * W ? limit - 3 * W : 0; break;
    case 2: top = fz_u64(&in); break;
    default: top = UINT64_MAX - 3 * W; break;
    }
    wg_replay_init(&window);
    while (fz_more(&in) && steps < MAX_STEPS) {
        uint8_t op = fz_u8(&in);
        uint64_t counter;
        bool got, want;

        switch (op % 6) {
        case 0: counter = add_clamped(top, (int16_t)fz_u16(&in)); break;
        case 1: counter = add_clamped(add_clamped(top, -(int64_t)W), (int8_t)fz_u8(&in)); break;
        case 2: counter = fz_u64(&in); break;
        case 3: counter = steps ? history[fz_u16(&in) % steps] : top; break;
        case 4: counter = add_clamped(top, 64 * (int64_t)(fz_u8(&in) % 130) + (op >> 3) % 3 - 1);
                break;
        default: counter = add_clamped(top, -64 * (int64_t)(fz_u8(&in) % 130) - (op >> 3) % 64);
                 break;
        }
        got = wg_replay_check(&window, counter, limit);
        want = model_check(&m, counter, limit);
        FUZZ_CHECK(got == want, "step %zu: counter %llu (limit %llu, greatest %llu): window %s, "
                   "definition %s", steps, (unsigned long long)counter,
                   (unsigned long long)limit, (unsigned long long)m.greatest,
                   got ? "accepts" : "refuses", want ? "accepts" : "refuses");
        history[steps++] = counter;
        if (counter > top)
            top = counter;
    }
    return 0;
}
