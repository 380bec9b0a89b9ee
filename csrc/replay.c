/*
 * replay.c - RFC 6479 sliding window over transport counters.
 *
 * The window is kept as `top` (one past the highest counter accepted) and a
 * ring of bit words. Moving forward clears the words that the window slides
 * over; a counter more than COUNTER_WINDOW_SIZE behind `top` is refused
 * without looking at the bitmap. Counters are shifted by one internally so
 * that a fresh window (top == 0) accepts counter 0.
 */
#include "replay.h"

#include <string.h>

void wg_replay_init(struct wg_replay *r)
{
    memset(r, 0, sizeof(*r));
}

static void slide_forward(struct wg_replay *r, uint64_t shifted)
{
    uint64_t word_new = shifted / 64, word_old = r->top / 64;
    uint64_t clear = word_new - word_old;

    if (clear > REPLAY_WORDS)
        clear = REPLAY_WORDS;
    for (uint64_t i = 1; i <= clear; i++)
        r->bitmap[(word_old + i) % REPLAY_WORDS] = 0;
    r->top = shifted;
}

bool wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t reject_after)
{
    uint64_t shifted, bit;
    uint64_t *word;
    bool seen;

    if (counter >= reject_after || r->top > reject_after)
        return false;
    shifted = counter + 1;
    /* Too old; written so that nothing wraps for counters near 2^64 (a limit
     * above REJECT_AFTER_MESSAGES lets them through to here). */
    if (r->top > COUNTER_WINDOW_SIZE && shifted < r->top - COUNTER_WINDOW_SIZE)
        return false;
    if (shifted > r->top)
        slide_forward(r, shifted);
    word = &r->bitmap[(shifted / 64) % REPLAY_WORDS];
    bit = UINT64_C(1) << (shifted % 64);
    seen = (*word & bit) != 0;
    *word |= bit;
    return !seen;
}
