/*
 * keypair.c - keypair rotation (protocol-notes.md 2.3) and staging, through
 * the data plane's own functions with no threads and no sockets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "../keypair.h"
#include "../peer.h"
#include "../queueing.h"
#include "../wg_dp.h"
#include "selftest.h"

#define SLOT 2

static struct wg_dp *make_dp(void)
{
    struct wg_dp_settings s = {
        .tun_fd = -1, .udp4_fd = -1, .udp6_fd = -1, .mtu = 1420, .max_peers = 4,
        .event_ring_size = 64,
        .timing = { .rekey_after_time_ns = 120000000000ull, .reject_after_time_ns = 180000000000ull,
                    .keepalive_timeout_ns = 10000000000ull, .rekey_timeout_ns = 5000000000ull,
                    .rekey_after_messages = REKEY_AFTER_MESSAGES,
                    .reject_after_messages = REJECT_AFTER_MESSAGES },
    };
    struct wg_dp *dp = NULL;

    CHECK(wg_dp_create(&s, &dp) == 0 && dp, "create");
    CHECK(wg_dp_peer_add(dp, SLOT) == 0, "peer add");
    return dp;
}

/* A handshake's index, then the keypair it becomes; returns the index. */
static uint32_t install(struct wg_dp *dp, bool initiator)
{
    struct wg_keypair_params p = { .initiator = initiator, .birth_ns = now_ns() };

    CHECK(wg_dp_index_new(dp, SLOT, &p.local_index) == 0, "index");
    p.remote_index = p.local_index ^ 1;
    memset(p.send_key, (int)p.local_index, sizeof(p.send_key));
    memset(p.recv_key, (int)p.local_index, sizeof(p.recv_key));
    CHECK(wg_dp_keypair_install(dp, SLOT, &p) == 0, "install %u", p.local_index);
    return p.local_index;
}

/* The three slots as local indices; 0 for an empty slot. */
static void slots(struct wg_dp *dp, uint32_t *prev, uint32_t *cur, uint32_t *next)
{
    struct wg_peer_info info;

    wg_dp_peer_info(dp, SLOT, &info);
    *prev = info.has_previous ? info.previous_index : 0;
    *cur = info.has_current ? info.current_index : 0;
    *next = info.has_next ? info.next_index : 0;
}

#define EXPECT_SLOTS(dp, p, c, n, what)                                              \
    do {                                                                             \
        uint32_t p_, c_, n_;                                                         \
        slots(dp, &p_, &c_, &n_);                                                    \
        CHECK(p_ == (p) && c_ == (c) && n_ == (n), "%s: %u/%u/%u", what, p_, c_, n_); \
    } while (0)

static bool indexed(struct wg_dp *dp, uint32_t index)
{
    return wg_indextable_lookup(&dp->indextable, index) != NULL;
}

static void rotation(void)
{
    struct wg_dp *dp = make_dp();
    struct peer *peer = wg_device_peer(dp, SLOT);
    struct keypair *kp;
    uint32_t k[8], stale;

    k[1] = install(dp, true);
    EXPECT_SLOTS(dp, 0, k[1], 0, "initiator: current at once");
    k[2] = install(dp, true);
    EXPECT_SLOTS(dp, k[1], k[2], 0, "initiator again: old current becomes previous");
    k[3] = install(dp, true);
    EXPECT_SLOTS(dp, k[2], k[3], 0, "the oldest goes");
    CHECK(!indexed(dp, k[1]) && indexed(dp, k[2]) && indexed(dp, k[3]), "index table follows");
    k[4] = install(dp, false);
    EXPECT_SLOTS(dp, 0, k[3], k[4], "responder: next, previous dropped, current kept");
    k[5] = install(dp, false);
    EXPECT_SLOTS(dp, 0, k[3], k[5], "a newer responder keypair replaces next");
    CHECK(!indexed(dp, k[4]), "replaced next leaves the index table");

    kp = atomic_load(&peer->current);
    CHECK(!wg_keypair_confirm(dp, peer, kp), "current is not confirmed again");
    kp = atomic_load(&peer->next);
    CHECK(wg_keypair_confirm(dp, peer, kp), "next is confirmed by its first packet");
    EXPECT_SLOTS(dp, k[3], k[5], 0, "confirmation rotates");

    k[6] = install(dp, false);
    k[7] = install(dp, true);
    EXPECT_SLOTS(dp, k[6], k[7], 0, "initiator with a next: next becomes previous, current goes");
    CHECK(!indexed(dp, k[5]) && indexed(dp, k[6]) && indexed(dp, k[7]), "index table after that");

    /* A handshake's index is superseded by the next handshake's: its keypair
     * is refused, and the old index is free again. */
    CHECK(wg_dp_index_new(dp, SLOT, &stale) == 0 && indexed(dp, stale), "pending index");
    struct wg_keypair_params late = { .local_index = stale, .initiator = true };
    CHECK(wg_dp_index_new(dp, SLOT, &k[0]) == 0 && !indexed(dp, stale), "superseded");
    CHECK(wg_dp_keypair_install(dp, SLOT, &late) == -ESTALE, "a superseded handshake");
    CHECK(wg_dp_keypairs_clear(dp, SLOT) == 0, "clear");
    EXPECT_SLOTS(dp, 0, 0, 0, "cleared");
    CHECK(!indexed(dp, k[6]) && !indexed(dp, k[7]) && !indexed(dp, k[0]),
          "keypairs and the pending handshake leave the index table");
    wg_dp_destroy(dp);
}

static void reserve(void)
{
    struct wg_dp *dp = make_dp();
    struct peer *peer = wg_device_peer(dp, SLOT);
    uint64_t first = 0;

    dp->timing.reject_after_messages = 10;
    install(dp, true);
    struct keypair *kp = atomic_load(&peer->current);
    CHECK(wg_keypair_reserve(dp, kp, 4, &first) == 4 && first == 0, "first four");
    CHECK(wg_keypair_reserve(dp, kp, 8, &first) == 6 && first == 4, "cut at the limit");
    CHECK(wg_keypair_reserve(dp, kp, 1, &first) == 0, "none past the limit");
    CHECK(wg_keypair_sendable(dp, peer, now_ns()) == NULL, "spent keypair cannot send");
    wg_dp_destroy(dp);
}

static void staging(void)
{
    struct wg_dp *dp = make_dp();
    struct loop *l = dp->tx;
    uint8_t dst[4] = { 10, 0, 0, 9 };
    struct wg_event ev[8];
    struct wg_dp_stats st;
    struct wg_peer_info info;

    CHECK(wg_dp_allowedips_insert(dp, SLOT, 4, dst, 24) == 0, "allowed ip");
    /* 200 packets with no keypair: the newest 128 wait. */
    for (unsigned int round = 0; round < 2; round++) {
        for (unsigned int i = 0; i < 100; i++) {
            uint8_t *pkt = l->arena + i * 128u + DP_HEADROOM;
            memset(pkt, 0, 20);
            pkt[0] = 0x45;
            pkt[3] = 20;
            memcpy(pkt + 16, dst, 4);
            l->pkts[i] = (struct packet){ .data = pkt, .len = 20 };
        }
        wg_send_batch(dp, l, 100, now_ns());
    }
    wg_dp_peer_info(dp, SLOT, &info);
    wg_dp_stats_get(dp, &st);
    CHECK(info.staged == MAX_STAGED_PACKETS, "staged %u", info.staged);
    CHECK(st.drop_staged_overflow == 200 - MAX_STAGED_PACKETS, "overflow %llu",
          (unsigned long long)st.drop_staged_overflow);
    CHECK(wg_dp_events_read(dp, ev, 8) == 1 && ev[0].type == WG_EV_NEED_HANDSHAKE &&
              ev[0].peer == SLOT, "one NEED_HANDSHAKE per episode");
    /* An initiator's keypair, then what its caller sends: the staged packets
     * (to no endpoint here: counted). */
    install(dp, true);
    CHECK(wg_dp_peer_info(dp, SLOT, &info) == 0 && info.staged == MAX_STAGED_PACKETS,
          "installing sends nothing");
    CHECK(wg_dp_send_keepalive(dp, SLOT) == 0, "send the staged packets");
    wg_dp_peer_info(dp, SLOT, &info);
    wg_dp_stats_get(dp, &st);
    CHECK(info.staged == 0 && st.drop_no_endpoint == MAX_STAGED_PACKETS, "flushed");
    CHECK(info.current_send_counter == MAX_STAGED_PACKETS, "each got a counter");
    CHECK(atomic_load(&dp->staged_total) == 0, "pool accounting");
    wg_dp_destroy(dp);
}

void selftest_keypair(void)
{
    rotation();
    reserve();
    staging();
}
