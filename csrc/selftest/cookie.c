/*
 * cookie.c - the front line's checks with a clock of our own: mac1 keyed by
 * our public key, mac2 under the current and the previous secret (and no
 * older), a cookie bound to address and port, and the rate limiter's buckets
 * (a burst of 5 then 20 per second, IPv6 by /64, idle sources forgotten, a
 * crowded table refusing), and the under-load state's clock. Cookie replies
 * need libsodium and are tested through Python (tests/c/test_frontline.py).
 */
#include <string.h>

#include "../cookie.h"
#include "../device.h"
#include "../ratelimiter.h"
#include "selftest.h"

#define S 1000000000ull

static void mac(uint8_t *out, const uint8_t *key, size_t keylen, const uint8_t *msg, size_t n)
{
    wg_blake2s(out, MESSAGE_MAC_LEN, msg, n, key, keylen);
}

/* An initiation-sized message with mac1 for pub and, with a cookie, mac2. */
static void message(uint8_t msg[MESSAGE_INITIATION_SIZE], const uint8_t pub[32],
                    const uint8_t *cookie)
{
    uint8_t key[32];
    struct blake2s_state s;

    for (int i = 0; i < MESSAGE_INITIATION_SIZE; i++)
        msg[i] = (uint8_t)(i * 7);
    wg_blake2s_init(&s, 32, NULL, 0);
    wg_blake2s_update(&s, LABEL_MAC1, 8);
    wg_blake2s_update(&s, pub, 32);
    wg_blake2s_final(&s, key);
    mac(msg + 116, key, 32, msg, 116);
    memset(msg + 132, 0, 16);
    if (cookie)
        mac(msg + 132, cookie, COOKIE_LEN, msg, 132);
}

static void cookie_for(uint8_t cookie[COOKIE_LEN], const uint8_t secret[32],
                       const struct wg_endpoint *src)
{
    uint8_t in[6];

    memcpy(in, src->addr, 4);
    in[4] = (uint8_t)(src->port >> 8);
    in[5] = (uint8_t)src->port;
    wg_blake2s(cookie, COOKIE_LEN, in, sizeof(in), secret, 32);
}

static void macs(void)
{
    struct cookie_checker c;
    struct wg_endpoint src = { .family = 4, .addr = { 192, 0, 2, 1 }, .port = 51820 };
    struct wg_endpoint moved = src;
    uint8_t pub[32], other[32], msg[MESSAGE_INITIATION_SIZE], cookie[COOKIE_LEN], old[32];

    memset(pub, 0x11, 32);
    memset(other, 0x22, 32);
    moved.port++;
    wg_cookie_checker_init(&c);
    message(msg, pub, NULL);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, false, S) == COOKIE_MAC_INVALID,
          "no key yet: nothing passes");
    wg_cookie_checker_set_key(&c, pub);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, false, S) == COOKIE_MAC_VALID, "mac1");
    msg[40] ^= 1;
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, false, S) == COOKIE_MAC_INVALID,
          "a changed body fails mac1");
    message(msg, other, NULL);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, false, S) == COOKIE_MAC_INVALID,
          "mac1 for another key");
    message(msg, pub, NULL);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, true, S) == COOKIE_MAC_VALID,
          "no mac2 (zeros: no cookie to check)");
    memset(cookie, 0x5a, sizeof(cookie));
    message(msg, pub, cookie);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, true, S) == COOKIE_MAC_VALID,
          "a made-up mac2");
    /* The validate call above made the first secret (at 1 s). */
    cookie_for(cookie, c.secret[0], &src);
    memcpy(old, c.secret[0], 32);
    message(msg, pub, cookie);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, true, 2 * S) ==
              COOKIE_MAC_VALID_WITH_COOKIE, "mac2 under the current secret");
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &moved, true, 2 * S) == COOKIE_MAC_VALID,
          "a cookie names the port too");
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, true, 122 * S) ==
              COOKIE_MAC_VALID_WITH_COOKIE, "after a rotation, under the previous secret");
    CHECK(memcmp(old, c.secret[0], 32) != 0, "the secret rotated after 120 s");
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, true, 243 * S) == COOKIE_MAC_VALID,
          "two rotations later the cookie is no good");
    wg_cookie_checker_set_key(&c, NULL);
    CHECK(wg_cookie_validate(&c, msg, sizeof(msg), &src, false, 244 * S) == COOKIE_MAC_INVALID,
          "key cleared");
    wg_cookie_checker_free(&c);
}

static unsigned int burst(struct ratelimiter *r, const struct wg_endpoint *src, uint64_t now,
                          unsigned int n)
{
    unsigned int allowed = 0;

    for (unsigned int i = 0; i < n; i++)
        allowed += wg_ratelimiter_allow(r, src, now);
    return allowed;
}

static void buckets(void)
{
    struct ratelimiter r;
    struct wg_endpoint a = { .family = 4, .addr = { 192, 0, 2, 1 } };
    struct wg_endpoint b = { .family = 4, .addr = { 192, 0, 2, 2 } };
    struct wg_endpoint v6 = { .family = 6, .addr = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0,
                                                      0, 0, 0, 0, 1 } };
    struct wg_endpoint v6_same64 = v6, v6_other64 = v6;
    unsigned int steady = 0;

    v6_same64.addr[15] = 9;
    v6_same64.addr[8] = 0xff;
    v6_other64.addr[7] = 3;
    CHECK(wg_ratelimiter_init(&r) == 0, "init");
    CHECK(burst(&r, &a, S, 10) == 5, "a burst of five");
    CHECK(!wg_ratelimiter_allow(&r, &a, S + S / 20 - 1), "not yet refilled");
    CHECK(wg_ratelimiter_allow(&r, &a, S + S / 20), "one packet's worth after 50 ms");
    for (uint64_t t = 0; t < 200; t++)
        steady += wg_ratelimiter_allow(&r, &a, 2 * S + t * S / 200);
    CHECK(steady >= 5 + 19 && steady <= 5 + 20, "about twenty a second under a flood: %u", steady);
    CHECK(burst(&r, &a, 10 * S, 10) == 5, "after a quiet spell, the burst again, no more");
    CHECK(burst(&r, &b, 10 * S, 10) == 5, "sources are independent");
    CHECK(burst(&r, &v6, 10 * S, 10) == 5, "IPv6");
    CHECK(burst(&r, &v6_same64, 10 * S, 10) == 0, "the same /64 shares a bucket");
    CHECK(burst(&r, &v6_other64, 10 * S, 10) == 5, "another /64 does not");
    wg_ratelimiter_free(&r);
}

/* The table is bounded: more sources at once than it has slots are refused
 * (never tracked at the expense of one being counted), and a second later
 * every one of them is idle, so new sources get slots again. */
static void bounded(void)
{
    struct ratelimiter r;
    struct wg_endpoint src = { .family = 4 };
    uint32_t allowed = 0, refused = 0;

    CHECK(wg_ratelimiter_init(&r) == 0, "init");
    for (uint32_t i = 1; i <= 4 * DP_RATELIMIT_SLOTS; i++) {
        memcpy(src.addr, &i, 4);
        if (wg_ratelimiter_allow(&r, &src, 5 * S))
            allowed++;
        else
            refused++;
    }
    CHECK(allowed <= DP_RATELIMIT_SLOTS && refused >= 3 * DP_RATELIMIT_SLOTS,
          "bounded: %u allowed, %u refused", allowed, refused);
    CHECK(wg_ratelimiter_allow(&r, &src, 6 * S), "idle sources are forgotten");
    wg_ratelimiter_free(&r);
}

/* Under load for UNDER_LOAD_AFTER_S after the queue eased, on any thread's clock: a
 * time read before another thread stored its later one is still under load. */
static void under_load(void)
{
    static struct wg_dp dp;

    CHECK(wg_events_init(&dp.events, 64) == 0, "event ring");
    CHECK(!wg_device_under_load(&dp, 10 * S), "idle: not under load");
    atomic_store(&dp.last_under_load_ns, 10 * S);
    CHECK(wg_device_under_load(&dp, 10 * S + S / 2), "half a second after: under load");
    CHECK(!wg_device_under_load(&dp, 11 * S + 1), "past a second after: not under load");
    CHECK(wg_device_under_load(&dp, 10 * S - 5), "a clock read before the mark: under load");
    wg_events_free(&dp.events);
}

void selftest_cookie(void)
{
    under_load();
    macs();
    buckets();
    bounded();
}
