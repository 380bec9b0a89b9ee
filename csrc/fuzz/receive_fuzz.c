/*
 * receive_fuzz.c - libFuzzer driver for the receive path from a datagram on:
 * recvmmsg (fake_io.c) and wg_socket_receive, then wg_receive_batch's three
 * passes (classification and index lookup; opening; replay window, keypair
 * confirmation, counters, the allowed-IPs source check, TUN writes; roaming)
 * and the handshake front line (cookie.c: mac1, mac2 and cookie replies;
 * ratelimiter.c; the under-load state), on a device with three peers, their
 * allowed IPs and real keypairs, and our public key. No threads, no sockets:
 * one batch at a time, between control calls through the API.
 *
 * The driver keeps its own model of what must happen, from the protocol's
 * rules rather than from the code: which indices name what (keypair rotation
 * as the whitepaper and the kernel's noise.c have it), which datagrams are
 * authentic (exactly the bytes the driver sealed, under the keypair the
 * index still names), the replay window as a set, the longest-prefix match
 * over the allowed IPs, mac1 and mac2 recomputed, a token bucket per source
 * (20 a second, bursts of 5, per IPv4 address or IPv6 /64), cookies learned
 * only from the replies, a cookie secret that changes every two minutes. It
 * predicts every datagram's fate (delivered, a keepalive, a handshake event,
 * a cookie reply, or the counter its drop goes to), and checks the TUN
 * writes byte for byte, every cookie reply (opened with XChaCha20-Poly1305,
 * which the driver brings itself and checks against libsodium's output), the
 * events up to Python in order, the counters, and each peer's endpoint and
 * received bytes.
 *
 * Input: operations, one byte each and their operands: time moving on; a
 * handshake (a new index and a keypair installed as initiator or responder,
 * of some age); a new index alone; keypairs cleared; an allowed IP added or
 * removed; a peer removed or added; our public key dropped or set; events
 * read; and batches of up to 64 datagrams, each from one of eight sources:
 * data sealed under a peer's keypair (counter, inner IPv4 or IPv6 packet,
 * its source inside or outside the peer's allowed IPs, its length field,
 * padding, or a keepalive), a datagram sent before, raw bytes, or a
 * handshake initiation, response or cookie reply with good or bad MACs;
 * any of them then maybe changed (a byte, cut, lengthened, another index).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "../crypto/aead.h"
#include "../crypto/blake2s.h"
#include "../device.h"
#include "../queueing.h"
#include "../socket.h"
#include "fake_io.h"
#include "fuzz.h"

extern const struct wg_aead_backend wg_aead_portable;

#define PEERS 3
#define NSRC 8
#define MAX_KPS 64
#define MAX_SEALED 512
#define MAX_BATCH 64
#define MAX_COOKIES 64
#define MAX_PREFIXES 32
#define MAX_DGRAM 1600
#define RING 64
#define NSEC 1000000000ull
#define COST (NSEC / RATELIMIT_PACKETS_PER_SECOND)
#define TOKENS_MAX (COST * RATELIMIT_PACKETS_BURSTABLE)
#define R REJECT_AFTER_MESSAGES

/* ---- XChaCha20-Poly1305 (the driver's own, for cookie replies) ------------ */

static uint32_t rotl(uint32_t v, int n)
{
    return v << n | v >> (32 - n);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

#define QR(a, b, c, d)                                              \
    do {                                                            \
        a += b; d = rotl(d ^ a, 16); c += d; b = rotl(b ^ c, 12);   \
        a += b; d = rotl(d ^ a, 8); c += d; b = rotl(b ^ c, 7);     \
    } while (0)

/* HChaCha20 (draft-irtf-cfrg-xchacha 2.2): the subkey for a 16-byte nonce. */
static void hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce[16])
{
    uint32_t x[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 };

    for (int i = 0; i < 8; i++)
        x[4 + i] = le32(key + 4 * i);
    for (int i = 0; i < 4; i++)
        x[12 + i] = le32(nonce + 4 * i);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 4; i++) {
        put32(out + 4 * i, x[i]);
        put32(out + 16 + 4 * i, x[12 + i]);
    }
}

/* libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt, as cookie.c calls it. */
static int xchacha_encrypt(uint8_t *c, unsigned long long *clen, const uint8_t *m,
                           unsigned long long mlen, const uint8_t *ad, unsigned long long adlen,
                           const uint8_t *nsec, const uint8_t *npub, const uint8_t *k)
{
    uint8_t subkey[32];

    (void)nsec;
    hchacha20(subkey, k, npub);
    wg_aead_portable.seal(c, m, (size_t)mlen, ad, (size_t)adlen, le64(npub + 16), subkey);
    *clen = mlen + 16;
    return 0;
}

static bool xchacha_decrypt(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad,
                            size_t adlen, const uint8_t *npub, const uint8_t *k)
{
    uint8_t subkey[32];

    hchacha20(subkey, k, npub);
    return wg_aead_portable.open(m, c, clen, ad, adlen, le64(npub + 16), subkey);
}

/* Computed with libsodium (PyNaCl's crypto_aead_xchacha20poly1305_ietf_encrypt):
 * key 80..9f, nonce 40..57, AD 50..5b, the message below. */
static void xchacha_self_test(void)
{
    static const char msg[] = "Ladies and Gentlemen of the class of 99";
    static const char want_hex[] =
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b54a6"
        "b82e0b805f4c7e3dccdcf3082844eba1";
    uint8_t key[32], nonce[24], ad[12], out[64], back[64];
    unsigned long long len;

    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(0x80 + i);
    for (int i = 0; i < 24; i++)
        nonce[i] = (uint8_t)(0x40 + i);
    for (int i = 0; i < 12; i++)
        ad[i] = (uint8_t)(0x50 + i);
    xchacha_encrypt(out, &len, (const uint8_t *)msg, 39, ad, 12, NULL, nonce, key);
    FUZZ_CHECK(len == 55, "XChaCha20-Poly1305 length");
    for (int i = 0; i < 55; i++) {
        unsigned int byte;
        sscanf(want_hex + 2 * i, "%2x", &byte);
        FUZZ_CHECK(out[i] == byte, "XChaCha20-Poly1305 differs from libsodium at byte %d", i);
    }
    FUZZ_CHECK(xchacha_decrypt(back, out, 55, ad, 12, nonce, key) &&
                   memcmp(back, msg, 39) == 0, "XChaCha20-Poly1305 open");
}

/* ---- the model ----------------------------------------------------------- */

struct source {
    bool v6_socket;
    struct fake_dgram meta;
    struct wg_endpoint ep;              /* what the data plane must make of it */
};

struct mkp {
    uint32_t index;
    uint8_t key[32];                    /* our receive key: what the remote seals with */
    bool initiator, live;
    uint64_t birth;
    int peer;
    uint64_t greatest;                  /* replay window: one past the highest accepted */
    uint64_t next_counter;              /* what the driver seals with next */
};

struct mpeer {
    bool present;
    int prev, cur, next;                /* keypairs, -1: none */
    bool has_hs;
    uint32_t hs_index;
    struct wg_endpoint ep;
    uint64_t rx_bytes;
    uint64_t rekey_event;               /* the last REKEY_RECV, 0: none */
};

struct prefix {
    uint8_t family, cidr, addr[16];
    uint32_t peer;
    bool in;                            /* currently inserted */
};

struct sealed {
    uint8_t bytes[MAX_DGRAM];
    uint32_t len;
    int kp;
    uint32_t pt_len;                    /* the plaintext, at bytes + 16 before sealing */
    uint8_t pt[MAX_DGRAM];
};

struct cookie {
    uint64_t gen;
    int src;
    uint8_t value[16];
};

struct bucket {
    uint8_t family, key[8];
    uint64_t last, tokens;
};

struct limiter {
    struct bucket b[NSRC];
    unsigned int n;
};

static struct source srcs[NSRC];
static uint8_t public_key[32], mac1_key[32], cookie_key[32];

static struct {
    struct wg_dp *dp;
    uint64_t now;
    struct mkp kps[MAX_KPS];
    unsigned int nkps;
    struct mpeer peers[PEERS];
    struct prefix prefixes[MAX_PREFIXES];
    unsigned int nprefixes;
    bool has_key;
    /* The events ring as the data plane must hold it. */
    struct wg_event ring[RING];
    unsigned int ring_n, ring_handshakes;
    uint64_t last_under_load;
    uint64_t secret_gen, secret_birth;
    struct cookie cookies[MAX_COOKIES];
    unsigned int ncookies;
    struct limiter limit, reply_limit;
    uint64_t stats[STAT_COUNT];         /* what the counters must read */
} m;

static struct sealed sealed[MAX_SEALED];
static unsigned int nsealed;

/* Every accepted (keypair, counter): the replay window's definition. */
#define SET_SLOTS 16384
static uint64_t set_counter[SET_SLOTS];
static uint32_t set_kp[SET_SLOTS], set_stamp[SET_SLOTS], stamp;

static bool set_insert(int kp, uint64_t counter)
{
    uint32_t i = (uint32_t)(((counter ^ (uint64_t)kp << 40) * 0x9E3779B97F4A7C15ull) >> 50) &
                 (SET_SLOTS - 1);

    for (unsigned int probes = 0; set_stamp[i] == stamp; probes++) {
        if (set_kp[i] == (uint32_t)kp && set_counter[i] == counter)
            return false;
        FUZZ_CHECK(probes < SET_SLOTS, "replay model full");
        i = (i + 1) & (SET_SLOTS - 1);
    }
    set_stamp[i] = stamp;
    set_kp[i] = (uint32_t)kp;
    set_counter[i] = counter;
    return true;
}

static bool replay_ok(struct mkp *k, int kp, uint64_t counter)
{
    if (counter >= R || (counter + 1 + COUNTER_WINDOW_SIZE < k->greatest))
        return false;
    if (!set_insert(kp, counter))
        return false;
    if (counter + 1 > k->greatest)
        k->greatest = counter + 1;
    return true;
}

enum lookup_kind { FOUND_NONE, FOUND_HANDSHAKE, FOUND_KEYPAIR };

static enum lookup_kind model_lookup_index(uint32_t index, int *peer, int *kp)
{
    for (int p = 0; p < PEERS; p++)
        if (m.peers[p].present && m.peers[p].has_hs && m.peers[p].hs_index == index) {
            *peer = p;
            return FOUND_HANDSHAKE;
        }
    for (unsigned int k = 0; k < m.nkps; k++)
        if (m.kps[k].live && m.kps[k].index == index) {
            *peer = m.kps[k].peer;
            *kp = (int)k;
            return FOUND_KEYPAIR;
        }
    return FOUND_NONE;
}

static unsigned int alen(uint8_t family)
{
    return family == 4 ? 4 : 16;
}

static bool prefix_has(const struct prefix *p, uint8_t family, const uint8_t *addr)
{
    if (p->family != family)
        return false;
    for (unsigned int bit = 0; bit < p->cidr; bit++) {
        uint8_t mask = (uint8_t)(0x80 >> (bit % 8));
        if ((addr[bit / 8] & mask) != (p->addr[bit / 8] & mask))
            return false;
    }
    return true;
}

static uint32_t model_allowed(uint8_t family, const uint8_t *addr)
{
    int best = -1;

    for (unsigned int i = 0; i < m.nprefixes; i++)
        if (m.prefixes[i].in && prefix_has(&m.prefixes[i], family, addr) &&
            (best < 0 || m.prefixes[i].cidr > m.prefixes[best].cidr))
            best = (int)i;
    return best < 0 ? WG_DP_PEER_NONE : m.prefixes[best].peer;
}

static void drop_kp(int k)
{
    if (k >= 0)
        m.kps[k].live = false;
}

/* ---- the events ring ---------------------------------------------------------- */

static void ring_push(const struct wg_event *ev, bool droppable)
{
    unsigned int limit = droppable ? RING - RING / 8 : RING;

    if (m.ring_n >= limit) {
        m.stats[STAT_DROP_EVENT_OVERFLOW]++;
        return;
    }
    m.ring[m.ring_n++] = *ev;
    if (ev->type == WG_EV_HANDSHAKE) {
        m.ring_handshakes++;
        m.stats[STAT_HANDSHAKES_RX]++;
    }
}

static void notify(uint32_t type, uint32_t peer)
{
    struct wg_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.peer = peer;
    ev.time_ns = m.now;
    ring_push(&ev, false);
}

static bool same_event(const struct wg_event *a, const struct wg_event *b)
{
    return a->type == b->type && a->peer == b->peer && a->time_ns == b->time_ns &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0 && a->len == b->len &&
           memcmp(a->data, b->data, a->len < sizeof(a->data) ? a->len : sizeof(a->data)) == 0;
}

static void check_events(void)
{
    static struct wg_event got[RING + 1];
    int n = wg_dp_events_read(m.dp, got, RING + 1);

    FUZZ_CHECK(n == (int)m.ring_n, "%d events, want %u", n, m.ring_n);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(same_event(&got[i], &m.ring[i]), "event %d: type %u peer %u len %u, want "
                   "type %u peer %u len %u", i, got[i].type, got[i].peer, got[i].len,
                   m.ring[i].type, m.ring[i].peer, m.ring[i].len);
    m.ring_n = m.ring_handshakes = 0;
}

/* ---- the front line --------------------------------------------------------------- */

static bool under_load(void)
{
    if (m.ring_handshakes >= RING / 8) {
        m.last_under_load = m.now;
        return true;
    }
    return m.last_under_load && m.now - m.last_under_load < UNDER_LOAD_AFTER_S * NSEC;
}

static void rotate_secret(void)
{
    if (m.secret_birth && m.now - m.secret_birth < COOKIE_SECRET_MAX_AGE_S * NSEC)
        return;
    m.secret_gen++;
    m.secret_birth = m.now;
}

static void mac(uint8_t out[16], const uint8_t *key, size_t keylen, const uint8_t *msg,
                size_t len)
{
    wg_blake2s(out, 16, msg, len, key, keylen);
}

static bool mac1_ok(const uint8_t *msg, size_t len)
{
    uint8_t want[16];

    if (!m.has_key)
        return false;
    mac(want, mac1_key, 32, msg, len - 32);
    return memcmp(want, msg + len - 32, 16) == 0;
}

/* mac2 under a cookie the driver learned for this source, from the current
 * secret or the one before. */
static bool mac2_ok(const uint8_t *msg, size_t len, int src)
{
    static const uint8_t zero[16];
    uint8_t want[16];

    if (memcmp(msg + len - 16, zero, 16) == 0)
        return false;
    rotate_secret();
    for (unsigned int i = 0; i < m.ncookies; i++) {
        const struct cookie *c = &m.cookies[i];
        if (c->src != src || c->gen + 1 < m.secret_gen)
            continue;
        mac(want, c->value, 16, msg, len - 16);
        if (memcmp(want, msg + len - 16, 16) == 0)
            return true;
    }
    return false;
}

static bool limiter_allow(struct limiter *l, const struct wg_endpoint *ep)
{
    uint8_t key[8] = { 0 };
    struct bucket *b = NULL;

    memcpy(key, ep->addr, ep->family == 4 ? 4 : 8);
    for (unsigned int i = 0; i < l->n; i++)
        if (l->b[i].family == ep->family && memcmp(l->b[i].key, key, 8) == 0)
            b = &l->b[i];
    if (!b) {
        b = &l->b[l->n++];
        b->family = ep->family;
        memcpy(b->key, key, 8);
        b->last = 0;
    }
    if (!b->last || m.now - b->last >= NSEC) {
        b->last = m.now;
        b->tokens = TOKENS_MAX - COST;
        return true;
    }
    b->tokens += m.now - b->last;
    if (b->tokens > TOKENS_MAX)
        b->tokens = TOKENS_MAX;
    b->last = m.now;
    if (b->tokens < COST)
        return false;
    b->tokens -= COST;
    return true;
}

/* ---- a batch --------------------------------------------------------------------- */

enum fate { F_DROP, F_CONSUMED, F_OPEN };

struct dgram {
    uint8_t bytes[MAX_DGRAM];
    uint32_t len;
    int src;
    /* The model's view. */
    enum fate fate;
    int kp, peer;
    uint64_t counter;
    int authentic;                      /* the sealed entry it is, -1: none */
    bool reply;                         /* a cookie reply goes back */
};

static struct dgram batch[MAX_BATCH];
static unsigned int nbatch;

static void count_drop(enum dp_stat s)
{
    m.stats[s]++;
}

static int find_sealed(const struct dgram *d, int kp)
{
    for (unsigned int i = 0; i < nsealed; i++)
        if (sealed[i].kp == kp && sealed[i].len == d->len &&
            memcmp(sealed[i].bytes, d->bytes, d->len) == 0)
            return (int)i;
    return -1;
}

static void model_handshake(struct dgram *d, uint32_t type, const struct wg_endpoint *src)
{
    struct wg_event ev;
    int peer = -1, kp = -1;

    d->fate = F_CONSUMED;
    memset(&ev, 0, sizeof(ev));
    ev.type = WG_EV_HANDSHAKE;
    ev.peer = WG_DP_PEER_NONE;
    ev.time_ns = m.now;
    if (type != MESSAGE_HANDSHAKE_INITIATION) {
        uint32_t index = le32(d->bytes + (type == MESSAGE_HANDSHAKE_RESPONSE ? 8 : 4));
        enum lookup_kind k = model_lookup_index(index, &peer, &kp);
        if (k == FOUND_NONE || (type == MESSAGE_HANDSHAKE_RESPONSE && k != FOUND_HANDSHAKE)) {
            d->fate = F_DROP;
            count_drop(STAT_DROP_UNKNOWN_INDEX);
            return;
        }
        ev.peer = (uint32_t)peer;
    }
    ev.src = *src;
    if (type != MESSAGE_HANDSHAKE_COOKIE) {
        bool load = under_load();
        if (!mac1_ok(d->bytes, d->len)) {
            d->fate = F_DROP;
            count_drop(STAT_DROP_HANDSHAKE_MAC);
            return;
        }
        if (load && mac2_ok(d->bytes, d->len, d->src)) {
            if (!limiter_allow(&m.limit, src)) {
                d->fate = F_DROP;
                count_drop(STAT_DROP_HANDSHAKE_RATELIMIT);
                return;
            }
        } else if (load) {
            if (limiter_allow(&m.reply_limit, src)) {
                rotate_secret();
                d->reply = true;
            } else {
                d->fate = F_DROP;
                count_drop(STAT_DROP_HANDSHAKE_RATELIMIT);
            }
            return;
        }
    }
    ev.len = d->len;
    memcpy(ev.data, d->bytes, d->len);
    ring_push(&ev, true);
}

/* Pass 1, as the protocol defines what a datagram is. */
static void model_classify(struct dgram *d)
{
    uint32_t type;
    enum lookup_kind k;
    int peer = -1, kp = -1;

    d->fate = F_DROP;
    d->kp = d->peer = d->authentic = -1;
    d->reply = false;
    if (d->len < 4) {
        count_drop(STAT_DROP_MALFORMED);
        return;
    }
    type = le32(d->bytes);
    if ((type == 1 && d->len == 148) || (type == 2 && d->len == 92) ||
        (type == 3 && d->len == 64)) {
        model_handshake(d, type, &srcs[d->src].ep);
        return;
    }
    if (type != 4 || d->len < 32) {
        count_drop(STAT_DROP_MALFORMED);
        return;
    }
    k = model_lookup_index(le32(d->bytes + 4), &peer, &kp);
    if (k != FOUND_KEYPAIR) {
        count_drop(STAT_DROP_UNKNOWN_INDEX);
        return;
    }
    d->counter = le64(d->bytes + 8);
    if (m.now - m.kps[kp].birth >= REJECT_AFTER_TIME_S * NSEC || d->counter >= R) {
        count_drop(STAT_DROP_EXPIRED);
        return;
    }
    d->kp = kp;
    d->peer = peer;
    d->authentic = find_sealed(d, kp);
    if (d->authentic < 0) {
        count_drop(STAT_DROP_DECRYPT);
        return;
    }
    d->fate = F_OPEN;
}

/* The inner packet's length and source (the receive path's IP check). */
static bool inner_ok(const uint8_t *pt, uint32_t len, uint32_t *total, uint8_t *family)
{
    if (len >= 20 && pt[0] >> 4 == 4) {
        *total = fz_be16(pt + 2);
        *family = 4;
        return *total >= 20 && *total <= len;
    }
    if (len >= 40 && pt[0] >> 4 == 6) {
        *total = 40u + fz_be16(pt + 4);
        *family = 6;
        return *total <= len;
    }
    return false;
}

struct delivery {
    const uint8_t *pt;
    uint32_t len;
};

static struct delivery deliveries[MAX_BATCH];
static unsigned int ndeliveries;

/* Pass 3 for an authentic datagram, in arrival order. */
static void model_finish(struct dgram *d, int *last_of_peer)
{
    struct mkp *k = &m.kps[d->kp];
    struct mpeer *p = &m.peers[d->peer];
    const struct sealed *s = &sealed[d->authentic];
    uint32_t total;
    uint8_t family;

    if (!replay_ok(k, d->kp, d->counter)) {
        count_drop(STAT_DROP_REPLAY);
        return;
    }
    if (p->next == d->kp) {
        /* The initiator's first data under a responder's keypair confirms it. */
        drop_kp(p->prev);
        p->prev = p->cur;
        p->cur = p->next;
        p->next = -1;
        notify(WG_EV_KEYPAIR_CONFIRMED, (uint32_t)d->peer);
    }
    last_of_peer[d->peer] = (int)(d - batch);
    p->rx_bytes += d->len;
    if (k->initiator && p->cur == d->kp &&
        m.now - k->birth >= (REJECT_AFTER_TIME_S - KEEPALIVE_TIMEOUT_S - REKEY_TIMEOUT_S) * NSEC &&
        !(p->rekey_event && m.now - p->rekey_event < REKEY_TIMEOUT_S * NSEC)) {
        p->rekey_event = m.now;
        notify(WG_EV_REKEY_RECV, (uint32_t)d->peer);
    }
    if (s->pt_len == 0) {
        m.stats[STAT_KEEPALIVES_RX]++;
        return;
    }
    if (!inner_ok(s->pt, s->pt_len, &total, &family)) {
        count_drop(STAT_DROP_MALFORMED);
        return;
    }
    if (model_allowed(family, s->pt + (family == 4 ? 12 : 8)) != (uint32_t)d->peer) {
        count_drop(STAT_DROP_BAD_SRC);
        return;
    }
    deliveries[ndeliveries++] = (struct delivery){ s->pt, total };
}

static bool same_remote(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
    return a->family == b->family && a->port == b->port && a->scope_id == b->scope_id &&
           memcmp(a->addr, b->addr, alen(a->family)) == 0;
}

static void model_roam(const int *last_of_peer)
{
    for (unsigned int i = 0; i < nbatch; i++) {
        for (int p = 0; p < PEERS; p++) {
            const struct wg_endpoint *src = &srcs[batch[i].src].ep;
            struct wg_event ev;
            if (last_of_peer[p] != (int)i)
                continue;
            if (same_remote(&m.peers[p].ep, src)) {
                m.peers[p].ep = *src;     /* our address may change, without an event */
                continue;
            }
            m.peers[p].ep = *src;
            memset(&ev, 0, sizeof(ev));
            ev.type = WG_EV_ENDPOINT_CHANGED;
            ev.peer = (uint32_t)p;
            ev.time_ns = m.now;
            ev.src = *src;
            ring_push(&ev, false);
        }
    }
}

static void check_reply(const struct fake_sent *s, const struct dgram *d)
{
    const struct wg_endpoint *ep = &srcs[d->src].ep;
    const uint8_t *mac1 = d->bytes + d->len - 32;
    uint8_t cookie[16];

    FUZZ_CHECK(s->len == MESSAGE_COOKIE_REPLY_SIZE, "a reply of %zu bytes", s->len);
    FUZZ_CHECK(s->fd == (ep->family == 4 ? fake_udp4_fd : fake_udp6_fd), "reply's socket");
    if (ep->family == 4) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->to;
        FUZZ_CHECK(sin->sin_family == AF_INET && ntohs(sin->sin_port) == ep->port &&
                       memcmp(&sin->sin_addr, ep->addr, 4) == 0, "reply's destination");
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->to;
        FUZZ_CHECK(sin6->sin6_family == AF_INET6 && ntohs(sin6->sin6_port) == ep->port &&
                       memcmp(&sin6->sin6_addr, ep->addr, 16) == 0 &&
                       sin6->sin6_scope_id == ep->scope_id, "reply's destination");
    }
    FUZZ_CHECK(le32(s->data) == MESSAGE_HANDSHAKE_COOKIE &&
                   memcmp(s->data + 4, d->bytes + 4, 4) == 0, "reply's type or receiver");
    FUZZ_CHECK(xchacha_decrypt(cookie, s->data + 32, 32, mac1, 16, s->data + 8, cookie_key),
               "a cookie reply that does not open under our cookie key and the mac1");
    for (unsigned int i = 0; i < m.ncookies; i++)
        if (m.cookies[i].gen == m.secret_gen && m.cookies[i].src == d->src) {
            FUZZ_CHECK(memcmp(m.cookies[i].value, cookie, 16) == 0,
                       "two cookies for one source under one secret");
            return;
        }
    if (m.ncookies < MAX_COOKIES) {
        m.cookies[m.ncookies].gen = m.secret_gen;
        m.cookies[m.ncookies].src = d->src;
        memcpy(m.cookies[m.ncookies++].value, cookie, 16);
    }
}

static const enum dp_stat checked_stats[] = {
    STAT_DROP_MALFORMED, STAT_DROP_UNKNOWN_INDEX, STAT_DROP_DECRYPT, STAT_DROP_REPLAY,
    STAT_DROP_EXPIRED, STAT_DROP_BAD_SRC, STAT_KEEPALIVES_RX, STAT_TUN_TX_PACKETS,
    STAT_HANDSHAKES_RX, STAT_DROP_HANDSHAKE_MAC, STAT_DROP_HANDSHAKE_RATELIMIT,
    STAT_HANDSHAKE_COOKIES_TX, STAT_DROP_EVENT_OVERFLOW, STAT_UDP_RX_PACKETS,
};

static void check_stats(void)
{
    if (getenv("FUZZ_DEBUG"))
        for (int s = 0; s < STAT_COUNT; s++)
            fprintf(stderr, "counter %d: %llu, model %llu\n", s,
                    (unsigned long long)atomic_load(&m.dp->stats[s]),
                    (unsigned long long)m.stats[s]);
    for (size_t i = 0; i < sizeof(checked_stats) / sizeof(checked_stats[0]); i++) {
        enum dp_stat s = checked_stats[i];
        uint64_t got = atomic_load(&m.dp->stats[s]);
        FUZZ_CHECK(got == m.stats[s], "counter %d is %llu, want %llu", s,
                   (unsigned long long)got, (unsigned long long)m.stats[s]);
    }
}

static void check_peers(void)
{
    for (int p = 0; p < PEERS; p++) {
        struct wg_peer_info info;
        int ret = wg_dp_peer_info(m.dp, (uint32_t)p, &info);
        if (!m.peers[p].present) {
            FUZZ_CHECK(ret == -ENOENT, "peer %d: info %d", p, ret);
            continue;
        }
        FUZZ_CHECK(ret == 0 && info.rx_bytes == m.peers[p].rx_bytes, "peer %d: rx_bytes %llu, "
                   "want %llu", p, (unsigned long long)info.rx_bytes,
                   (unsigned long long)m.peers[p].rx_bytes);
        FUZZ_CHECK(memcmp(&info.endpoint, &m.peers[p].ep, sizeof(info.endpoint)) == 0,
                   "peer %d: endpoint (family %u port %u), want (family %u port %u)", p,
                   info.endpoint.family, info.endpoint.port, m.peers[p].ep.family,
                   m.peers[p].ep.port);
        FUZZ_CHECK(info.has_current == (m.peers[p].cur >= 0) &&
                       info.has_next == (m.peers[p].next >= 0) &&
                       info.has_previous == (m.peers[p].prev >= 0),
                   "peer %d: keypair slots", p);
        if (m.peers[p].cur >= 0)
            FUZZ_CHECK(info.current_index == m.kps[m.peers[p].cur].index, "peer %d: current", p);
    }
}

static void run_batch(bool v6_socket)
{
    int fd = v6_socket ? fake_udp6_fd : fake_udp4_fd, last_of_peer[PEERS] = { -1, -1, -1 };
    struct loop *l = m.dp->rx;
    size_t replies = 0, sent_v4 = 0;
    bool more;
    int n;

    fake_io_reset();
    ndeliveries = 0;
    for (unsigned int i = 0; i < nbatch; i++)
        fake_udp_queue(fd, batch[i].bytes, batch[i].len, &srcs[batch[i].src].meta);
    m.stats[STAT_UDP_RX_PACKETS] += nbatch;
    for (unsigned int i = 0; i < nbatch; i++)
        model_classify(&batch[i]);
    for (unsigned int i = 0; i < nbatch; i++)
        if (batch[i].fate == F_OPEN)
            model_finish(&batch[i], last_of_peer);
    model_roam(last_of_peer);

    if (getenv("FUZZ_DEBUG"))
        for (unsigned int i = 0; i < nbatch; i++)
            fprintf(stderr, "dgram %u: src %d, %u bytes, type %u, fate %d, kp %d, authentic %d, "
                    "reply %d\n", i, batch[i].src, batch[i].len,
                    batch[i].len >= 4 ? le32(batch[i].bytes) : 0, batch[i].fate, batch[i].kp,
                    batch[i].authentic, batch[i].reply);
    n = wg_socket_receive(m.dp, l, fd, &more);
    FUZZ_CHECK(n == (int)nbatch && !more, "wg_socket_receive: %d of %u", n, nbatch);
    wg_receive_batch(m.dp, l, (unsigned int)n, m.now);

    /* Cookie replies: the IPv4 socket's first, each in its datagram's order. */
    for (unsigned int i = 0; i < nbatch; i++)
        if (batch[i].reply) {
            replies++;
            sent_v4 += srcs[batch[i].src].ep.family == 4;
        }
    FUZZ_CHECK(fake_udp_sent_count() == replies, "%zu datagrams sent, want %zu cookie replies",
               fake_udp_sent_count(), replies);
    for (size_t k = 0, v4 = 0, v6 = sent_v4; k < nbatch; k++) {
        const struct dgram *d = &batch[k];
        if (d->reply)
            check_reply(fake_udp_sent_at(srcs[d->src].ep.family == 4 ? v4++ : v6++), d);
    }
    m.stats[STAT_HANDSHAKE_COOKIES_TX] += replies;
    FUZZ_CHECK(fake_tun_write_count() == ndeliveries, "%zu packets to the TUN, want %u",
               fake_tun_write_count(), ndeliveries);
    for (unsigned int i = 0; i < ndeliveries; i++) {
        size_t len;
        const uint8_t *w = fake_tun_write_at(i, &len);
        FUZZ_CHECK(len == deliveries[i].len && memcmp(w, deliveries[i].pt, len) == 0,
                   "TUN packet %u differs (%zu bytes, want %u)", i, len, deliveries[i].len);
    }
    m.stats[STAT_TUN_TX_PACKETS] += ndeliveries;
    check_stats();
}

/* ---- building datagrams -------------------------------------------------------- */

static uint32_t pick_index(struct fuzz_input *in, int peer)
{
    uint8_t how = fz_u8(in) % 6;
    const struct mpeer *p = &m.peers[peer];
    int slots[3] = { p->prev, p->cur, p->next };

    if (how == 0 && p->has_hs)
        return p->hs_index;
    if (how >= 1 && how <= 3 && slots[how - 1] >= 0)
        return m.kps[slots[how - 1]].index;
    if (how == 4 && m.nkps)
        return m.kps[fz_u8(in) % m.nkps].index;
    return fz_u32(in);
}

static void seeded(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;

    if (!s)
        s = 1;

    for (size_t i = 0; i < len; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (uint8_t)s;
    }
}

/* An address inside a prefix of `peer` (or of any peer, or none). */
static void pick_inner_source(struct fuzz_input *in, int peer, uint8_t family, uint8_t *addr)
{
    uint8_t how = fz_u8(in);
    unsigned int candidates[MAX_PREFIXES], n = 0;

    fz_bytes(in, addr, alen(family));
    for (unsigned int i = 0; i < m.nprefixes; i++)
        if (m.prefixes[i].family == family && m.prefixes[i].in &&
            ((how & 1) || m.prefixes[i].peer == (uint32_t)peer))
            candidates[n++] = i;
    if (how & 2 || !n)
        return;                         /* anywhere */
    {
        const struct prefix *p = &m.prefixes[candidates[fz_u8(in) % n]];
        for (unsigned int bit = 0; bit < p->cidr; bit++) {
            uint8_t mask = (uint8_t)(0x80 >> (bit % 8));
            addr[bit / 8] = (uint8_t)((addr[bit / 8] & ~mask) | (p->addr[bit / 8] & mask));
        }
    }
}

static uint32_t build_inner(struct fuzz_input *in, int peer, uint8_t *pt)
{
    uint8_t shape = fz_u8(in);
    uint8_t family = shape & 1 ? 6 : 4;
    uint32_t payload = fz_u16(in) % 1400, l3 = family == 4 ? 20 : 40, len, pad;

    if (shape % 8 == 0)
        return 0;                       /* a keepalive */
    len = l3 + payload;
    memset(pt, 0, l3);
    seeded(pt + l3, payload, fz_u64(in));
    if (family == 4) {
        pt[0] = 0x45;
        fz_put_be16(pt + 2, (uint16_t)(shape & 2 ? fz_u16(in) : len));
        pt[8] = 64;
        pt[9] = 17;
        pick_inner_source(in, peer, 4, pt + 12);
        fz_bytes(in, pt + 16, 4);
    } else {
        pt[0] = 0x60;
        fz_put_be16(pt + 4, (uint16_t)(shape & 2 ? fz_u16(in) : len - 40));
        pt[6] = 17;
        pt[7] = 64;
        pick_inner_source(in, peer, 6, pt + 8);
        fz_bytes(in, pt + 24, 16);
    }
    /* Padding to 16 bytes as a sender adds it, or more. */
    pad = shape & 4 ? (16 - len % 16) % 16 : fz_u8(in) % 32;
    if (len + pad > MAX_DGRAM - 32)
        pad = 0;
    memset(pt + len, 0, pad);
    return len + pad;
}

static uint64_t pick_counter(struct fuzz_input *in, struct mkp *k)
{
    uint8_t how = fz_u8(in) % 6;
    uint64_t c;

    switch (how) {
    case 0: c = k->next_counter; break;
    case 1: c = k->next_counter + fz_u8(in); break;
    case 2: c = k->next_counter - 1 - (fz_u16(in) % (k->next_counter ? k->next_counter : 1)); break;
    case 3: c = k->next_counter + COUNTER_WINDOW_SIZE - 64 + fz_u8(in); break;
    case 4: c = fz_u64(in); break;
    default: c = R - 1 - fz_u8(in) + fz_u8(in); break;
    }
    if (c >= k->next_counter && c != UINT64_MAX)
        k->next_counter = c + 1;
    return c;
}

static bool build_data(struct fuzz_input *in, struct dgram *d)
{
    int peer = fz_u8(in) % PEERS, kp;
    uint8_t slot = fz_u8(in) % 4;
    const struct mpeer *p = &m.peers[peer];
    int slots[3] = { p->prev, p->cur, p->next };
    struct sealed *s;
    uint64_t counter;

    kp = slot < 3 ? slots[slot] : -1;
    if (kp < 0) {
        if (!m.nkps)
            return false;
        kp = fz_u8(in) % m.nkps;        /* any keypair, live or not */
    }
    if (nsealed == MAX_SEALED)
        return false;
    s = &sealed[nsealed];
    s->kp = kp;
    s->pt_len = build_inner(in, m.kps[kp].peer, s->pt);
    counter = pick_counter(in, &m.kps[kp]);
    put32(s->bytes, MESSAGE_DATA);
    put32(s->bytes + 4, m.kps[kp].index);
    put64(s->bytes + 8, counter);
    wg_aead_portable.seal(s->bytes + 16, s->pt, s->pt_len, NULL, 0, counter, m.kps[kp].key);
    s->len = 32 + s->pt_len;
    memcpy(d->bytes, s->bytes, s->len);
    d->len = s->len;
    nsealed++;
    return true;
}

static void build_handshake(struct fuzz_input *in, struct dgram *d, uint32_t type)
{
    uint32_t len = type == 1 ? 148 : type == 2 ? 92 : 64;
    uint8_t macs = fz_u8(in);
    int peer = fz_u8(in) % PEERS;

    seeded(d->bytes, len, fz_u64(in));
    put32(d->bytes, type);
    put32(d->bytes + 4, fz_u32(in));    /* the sender's index */
    if (type != 1)
        put32(d->bytes + (type == 2 ? 8 : 4), pick_index(in, peer));
    d->len = len;
    if (type == 3)
        return;
    if (macs % 4 != 0)                  /* mac1 right (else whatever the seed made) */
        mac(d->bytes + len - 32, mac1_key, 32, d->bytes, len - 32);
    if (macs >> 2 & 1) {
        memset(d->bytes + len - 16, 0, 16);
    } else if (macs >> 3 & 1 && m.ncookies) {
        const struct cookie *c = &m.cookies[fz_u8(in) % m.ncookies];
        mac(d->bytes + len - 16, c->value, 16, d->bytes, len - 16);
    }
}

static void mutate(struct fuzz_input *in, struct dgram *d)
{
    uint8_t how = fz_u8(in);

    if (!(how & 1))
        return;
    switch (how >> 1 & 3) {
    case 0:
        if (d->len)
            d->bytes[fz_u16(in) % d->len] ^= fz_u8(in) | 1;
        break;
    case 1:
        d->len = d->len ? fz_u16(in) % d->len : 0;
        break;
    case 2: {
        uint32_t more = fz_u8(in);
        if (d->len + more > MAX_DGRAM)
            more = MAX_DGRAM - d->len;
        fz_bytes(in, d->bytes + d->len, more);
        d->len += more;
        break;
    }
    default:
        if (d->len >= 8)
            put32(d->bytes + 4, pick_index(in, fz_u8(in) % PEERS));
        break;
    }
}

static void read_batch(struct fuzz_input *in)
{
    uint8_t head = fz_u8(in);
    bool v6 = head & 1;
    unsigned int want = fz_u8(in) % MAX_BATCH + 1;

    nbatch = 0;
    while (nbatch < want && fz_more(in)) {
        struct dgram *d = &batch[nbatch];
        uint8_t kind = fz_u8(in);

        d->src = v6 ? 3 + fz_u8(in) % 5 : fz_u8(in) % 3;
        switch (kind % 8) {
        case 0: case 1: case 2:
            if (!build_data(in, d))
                continue;
            break;
        case 3:
            if (!nsealed)
                continue;
            {
                const struct sealed *s = &sealed[fz_u16(in) % nsealed];
                memcpy(d->bytes, s->bytes, s->len);
                d->len = s->len;
            }
            break;
        case 4: {
            size_t got;
            const uint8_t *raw = fz_take(in, fz_u16(in) % MAX_DGRAM, &got);
            memcpy(d->bytes, raw, got);
            d->len = (uint32_t)got;
            break;
        }
        default:
            build_handshake(in, d, kind % 8 - 4);
            break;
        }
        mutate(in, d);
        nbatch++;
    }
    if (nbatch)
        run_batch(v6);
}

/* ---- control -------------------------------------------------------------------- */

static const struct {
    uint8_t family, cidr, addr[16];
    uint32_t peer;
} initial_prefixes[] = {
    { 4, 16, { 10, 0 }, 0 },
    { 6, 48, { 0xfd, 0 }, 0 },
    { 4, 24, { 10, 0, 1 }, 1 },                 /* inside peer 0's, more specific */
    { 6, 64, { 0xfd, 0, 0, 0, 0, 0, 0, 1 }, 1 },
    { 4, 16, { 192, 168 }, 2 },
    { 6, 0, { 0 }, 2 },                         /* every other IPv6 source */
    { 4, 32, { 10, 0, 1, 7 }, 2 },              /* one host inside peer 1's */
    { 4, 0, { 0 }, 1 },                         /* not inserted at first */
};

static void drop_peer_prefixes(int peer)
{
    for (unsigned int i = 0; i < m.nprefixes; i++)
        if (m.prefixes[i].peer == (uint32_t)peer && m.prefixes[i].in)
            m.prefixes[i].in = false;
}

static int new_keypair(int peer, bool initiator, uint64_t age, bool fresh_index)
{
    struct mpeer *p = &m.peers[peer];
    struct wg_keypair_params params;
    struct mkp *k;
    uint32_t index = 0;
    int ret, id;

    if (fresh_index) {
        ret = wg_dp_index_new(m.dp, (uint32_t)peer, &index);
        FUZZ_CHECK(ret == (p->present ? 0 : -ENOENT), "index_new: %d", ret);
        if (ret)
            return -1;
        p->has_hs = true;
        p->hs_index = index;
    }
    if (m.nkps == MAX_KPS)
        return -1;
    memset(&params, 0, sizeof(params));
    params.local_index = p->has_hs ? p->hs_index : 0;
    params.remote_index = 0x1000u + m.nkps;
    params.initiator = initiator;
    params.birth_ns = age > m.now ? 0 : m.now - age;
    id = (int)m.nkps;
    k = &m.kps[id];
    memset(k, 0, sizeof(*k));
    seeded(k->key, 32, 0x5eed0000u + (uint64_t)id);
    memcpy(params.recv_key, k->key, 32);
    seeded(params.send_key, 32, 0xfeed0000u + (uint64_t)id);
    ret = wg_dp_keypair_install(m.dp, (uint32_t)peer, &params);
    if (!p->present) {
        FUZZ_CHECK(ret == -ENOENT, "install on a missing peer: %d", ret);
        return -1;
    }
    if (!p->has_hs) {
        FUZZ_CHECK(ret == -ESTALE, "install without a pending index: %d", ret);
        return -1;
    }
    FUZZ_CHECK(ret == 0, "install: %d", ret);
    m.nkps++;
    k->index = p->hs_index;
    k->initiator = initiator;
    k->birth = params.birth_ns;
    k->peer = peer;
    k->live = true;
    p->has_hs = false;
    if (initiator) {
        if (p->next >= 0) {
            drop_kp(p->prev);
            p->prev = p->next;
            p->next = -1;
            drop_kp(p->cur);
        } else {
            drop_kp(p->prev);
            p->prev = p->cur;
        }
        p->cur = id;
    } else {
        drop_kp(p->next);
        drop_kp(p->prev);
        p->prev = -1;
        p->next = id;
    }
    return id;
}

static void clear_keypairs(int peer)
{
    struct mpeer *p = &m.peers[peer];

    drop_kp(p->prev);
    drop_kp(p->cur);
    drop_kp(p->next);
    p->prev = p->cur = p->next = -1;
    p->has_hs = false;
}

static void add_peer(int peer)
{
    struct mpeer *p = &m.peers[peer];
    int ret = wg_dp_peer_add(m.dp, (uint32_t)peer);

    FUZZ_CHECK(ret == (p->present ? -EEXIST : 0), "peer_add: %d", ret);
    if (p->present)
        return;
    memset(p, 0, sizeof(*p));
    p->present = true;
    p->prev = p->cur = p->next = -1;
    p->ep = srcs[peer].ep;
    ret = wg_dp_peer_set_endpoint(m.dp, (uint32_t)peer, &p->ep);
    FUZZ_CHECK(ret == 0, "set_endpoint: %d", ret);
}

static void remove_peer(int peer)
{
    struct mpeer *p = &m.peers[peer];
    int ret = wg_dp_peer_remove(m.dp, (uint32_t)peer);

    FUZZ_CHECK(ret == (p->present ? 0 : -ENOENT), "peer_remove: %d", ret);
    if (!p->present)
        return;
    clear_keypairs(peer);
    drop_peer_prefixes(peer);            /* all gone with it */
    p->present = false;
}

static void toggle_prefix(struct fuzz_input *in)
{
    struct prefix *x = &m.prefixes[fz_u8(in) % m.nprefixes];
    uint32_t peer = fz_u8(in) % PEERS;
    int ret;

    if (x->in) {
        ret = wg_dp_allowedips_remove(m.dp, peer, x->family, x->addr, x->cidr);
        FUZZ_CHECK(ret == (x->peer == peer ? 0 : -ENOENT), "allowedips_remove: %d", ret);
        if (!ret)
            x->in = false;
    } else {
        ret = wg_dp_allowedips_insert(m.dp, peer, x->family, x->addr, x->cidr);
        FUZZ_CHECK(ret == (m.peers[peer].present ? 0 : -ENOENT), "allowedips_insert: %d", ret);
        if (!ret) {
            x->in = true;
            x->peer = peer;
        }
    }
}

static void init_sources(void)
{
    static const struct {
        bool v6_socket, v4;
        const char *addr, *local;
        uint16_t port;
        uint32_t ifindex, scope;
        bool info;
    } table[NSRC] = {
        { false, true, "192.0.2.1", "198.51.100.1", 51820, 2, 0, true },
        { false, true, "192.0.2.2", NULL, 1000, 0, 0, false },
        { false, true, "192.0.2.1", "198.51.100.9", 51821, 4, 0, true },
        { true, true, "203.0.113.5", "198.51.100.2", 4000, 3, 0, true },
        { true, false, "2001:db8::1", "2001:db8:ff::1", 51820, 2, 0, true },
        { true, false, "2001:db8::2", NULL, 7, 0, 0, false },
        { true, false, "fe80::1", "fe80::2", 9, 5, 5, true },
        { true, false, "2001:db8::1:0:0:1", "2001:db8:ff::1", 1, 2, 0, true },
    };
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    for (int i = 0; i < NSRC; i++) {
        struct source *s = &srcs[i];
        uint8_t a[16] = { 0 }, local[16] = { 0 };

        memset(s, 0, sizeof(*s));
        s->v6_socket = table[i].v6_socket;
        inet_pton(table[i].v4 ? AF_INET : AF_INET6, table[i].addr, a);
        if (table[i].local)
            inet_pton(table[i].v4 ? AF_INET : AF_INET6, table[i].local, local);
        s->ep.family = table[i].v4 ? 4 : 6;
        memcpy(s->ep.addr, a, table[i].v4 ? 4 : 16);
        s->ep.port = table[i].port;
        s->ep.scope_id = table[i].scope;
        if (table[i].info) {
            memcpy(s->ep.src_addr, local, table[i].v4 ? 4 : 16);
            s->ep.src_ifindex = table[i].ifindex;
        }
        if (!s->v6_socket) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&s->meta.from;
            sin->sin_family = AF_INET;
            sin->sin_port = htons(table[i].port);
            memcpy(&sin->sin_addr, a, 4);
            s->meta.from_len = sizeof(*sin);
            s->meta.pktinfo4 = table[i].info;
            s->meta.pi4.ipi_ifindex = (int)table[i].ifindex;
            memcpy(&s->meta.pi4.ipi_spec_dst, local, 4);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->meta.from;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(table[i].port);
            sin6->sin6_scope_id = table[i].scope;
            if (table[i].v4) {
                memcpy(sin6->sin6_addr.s6_addr, mapped, 12);
                memcpy(sin6->sin6_addr.s6_addr + 12, a, 4);
                memcpy(s->meta.pi6.ipi6_addr.s6_addr, mapped, 12);
                memcpy(s->meta.pi6.ipi6_addr.s6_addr + 12, local, 4);
            } else {
                memcpy(sin6->sin6_addr.s6_addr, a, 16);
                memcpy(s->meta.pi6.ipi6_addr.s6_addr, local, 16);
            }
            s->meta.from_len = sizeof(*sin6);
            s->meta.pktinfo6 = table[i].info;
            s->meta.pi6.ipi6_ifindex = table[i].ifindex;
        }
    }
}

static void labelled(uint8_t out[32], const char label[8], const uint8_t key[32])
{
    uint8_t in[40];

    memcpy(in, label, 8);
    memcpy(in + 8, key, 32);
    wg_blake2s(out, 32, in, sizeof(in), NULL, 0);
}

static void setup_once(void)
{
    static bool done;

    if (done)
        return;
    done = true;
    xchacha_self_test();
    wg_cookie_register_sodium((void *)xchacha_encrypt);
    init_sources();
    seeded(public_key, 32, 0x9b1c);
    labelled(mac1_key, "mac1----", public_key);
    labelled(cookie_key, "cookie--", public_key);
}

/* One device for every input, put back to where it started: no peers, no
 * events, and a clock 1000 s past the last input's, so that no rate limit,
 * under-load state or cookie secret of an earlier input can matter (each
 * input starts with a fresh model). A fresh device now and then, before the
 * clock could wrap. */
static struct wg_dp *device;
static uint64_t clock_base;

static void start(void)
{
    static struct wg_event discard[RING];
    struct wg_dp_settings s;
    uint32_t active[PEERS];
    int ret;

    if (!device || clock_base > (1ull << 62)) {
        if (device)
            wg_dp_destroy(device);
        fake_settings(&s);
        s.max_peers = PEERS;
        s.event_ring_size = RING;
        ret = wg_dp_create(&s, &device);
        FUZZ_CHECK(ret == 0, "wg_dp_create: %d", ret);
        clock_base = 1000 * NSEC;
    }
    while (wg_dp_events_read(device, discard, RING) > 0)
        ;
    while (wg_dp_active_peers(device, active, PEERS) > 0)
        ;
    memset(&m, 0, sizeof(m));
    m.dp = device;
    m.now = clock_base;
    for (int i = 0; i < STAT_COUNT; i++)
        m.stats[i] = atomic_load(&device->stats[i]);
    nsealed = 0;
    if (++stamp == 0) {
        memset(set_stamp, 0, sizeof(set_stamp));
        stamp = 1;
    }
    ret = wg_dp_set_public_key(m.dp, public_key);
    FUZZ_CHECK(ret == 0, "set_public_key: %d", ret);
    m.has_key = true;
    for (unsigned int i = 0; i < sizeof(initial_prefixes) / sizeof(initial_prefixes[0]); i++) {
        struct prefix *x = &m.prefixes[m.nprefixes++];
        x->family = initial_prefixes[i].family;
        x->cidr = initial_prefixes[i].cidr;
        memcpy(x->addr, initial_prefixes[i].addr, 16);
        x->peer = initial_prefixes[i].peer;
    }
    for (int p = 0; p < PEERS; p++)
        add_peer(p);
    for (unsigned int i = 0; i + 1 < m.nprefixes; i++) {
        struct prefix *x = &m.prefixes[i];
        ret = wg_dp_allowedips_insert(m.dp, x->peer, x->family, x->addr, x->cidr);
        FUZZ_CHECK(ret == 0, "allowedips_insert: %d", ret);
        x->in = true;
    }
    for (int p = 0; p < PEERS; p++)
        new_keypair(p, true, 0, true);
}

/* Every peer goes, and with it everything an input allocated. */
static void finish(void)
{
    for (int p = 0; p < PEERS; p++)
        wg_dp_peer_remove(m.dp, (uint32_t)p);
    clock_base = m.now + 1000 * NSEC;
}

static void step(struct fuzz_input *in)
{
    uint8_t op = fz_u8(in);
    int peer;

    switch (op % 16) {
    case 0: {
        uint8_t unit = fz_u8(in);
        uint64_t amount = fz_u8(in);
        m.now += amount * (unit < 64 ? NSEC / 1000 : unit < 128 ? NSEC / 10 : unit < 192 ? NSEC
                                                                                       : 60 * NSEC);
        break;
    }
    case 1: {
        static const uint64_t ages[] = { 0, 119 * NSEC, 165 * NSEC, 179 * NSEC, 180 * NSEC };
        uint8_t how = fz_u8(in);
        peer = fz_u8(in) % PEERS;
        new_keypair(peer, how & 1, how >> 1 < 5 ? ages[how >> 1] : fz_u32(in) * 1000000ull,
                    true);
        break;
    }
    case 2:
        peer = fz_u8(in) % PEERS;
        if (op & 0x80) {
            new_keypair(peer, false, 0, false);     /* with whatever index is pending */
        } else {
            uint32_t index;
            int ret = wg_dp_index_new(m.dp, (uint32_t)peer, &index);
            FUZZ_CHECK(ret == (m.peers[peer].present ? 0 : -ENOENT), "index_new: %d", ret);
            if (!ret) {
                m.peers[peer].has_hs = true;
                m.peers[peer].hs_index = index;
            }
        }
        break;
    case 3:
        peer = fz_u8(in) % PEERS;
        FUZZ_CHECK(wg_dp_keypairs_clear(m.dp, (uint32_t)peer) ==
                       (m.peers[peer].present ? 0 : -ENOENT), "keypairs_clear");
        if (m.peers[peer].present)
            clear_keypairs(peer);
        break;
    case 4:
        toggle_prefix(in);
        break;
    case 5:
        peer = fz_u8(in) % PEERS;
        if (op & 0x80)
            add_peer(peer);
        else
            remove_peer(peer);
        break;
    case 6:
        m.has_key = !(op & 0x80);
        FUZZ_CHECK(wg_dp_set_public_key(m.dp, m.has_key ? public_key : NULL) == 0, "key");
        break;
    case 7:
        check_events();
        check_peers();
        break;
    default:
        read_batch(in);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };

    setup_once();
    start();
    while (fz_more(&in))
        step(&in);
    check_events();
    check_peers();
    finish();
    return 0;
}
