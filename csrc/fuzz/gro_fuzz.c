/*
 * gro_fuzz.c - libFuzzer driver for the coalescing of opened packets into
 * TUN writes (offload.c's wg_gro_build and wg_gro_prepare, through tun.c's
 * wg_tun_write_batch), checked for consistency: every write is one packet
 * as it was, or a super-packet whose virtio header is one the kernel takes
 * and which, cut again by ref_offload.h's own segmentation, gives back the
 * packets it was made of, byte for byte (except what segmentation rewrites:
 * the transport checksum, which the kernel fills from the pseudo-header sum
 * left in the field, the IPv4 ID where DF makes it meaningless, and the TCP
 * urgent pointer without URG, which tcp_gro_receive does not compare
 * either). Every packet comes out exactly once, and each flow's packets (and
 * the packets of no flow) in the order they came.
 *
 * Input: a byte for the device (tun_pi, which coalescing is allowed), up to
 * four flows (IPv4 or IPv6, TCP or UDP, addresses, ports, sequence number,
 * segment size, ID, TTL, TOS, DF, TCP options), then packets: the next
 * segment of a flow, with any of a dozen deviations the coalescing must
 * notice (another TTL, TOS, DF or flow label, a gap in the sequence, another
 * ACK number, window or options, other TCP flags, a longer or shorter
 * segment, IPv4 options, a UDP length that does not match, a broken IPv4
 * header checksum), a raw packet, a packet of no flow, or the last one again.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>

#include "../device.h"
#include "../queueing.h"
#include "../tun.h"
#include "fake_io.h"
#include "fuzz.h"
#include "ref_offload.h"

#define MAX_PACKETS 512
#define MAX_LEN 9100
#define SLOT 9216                       /* DP_HEADROOM + MAX_LEN + DP_TAILROOM, rounded */

struct flow {
    uint8_t v6, tcp, opt_len, ihl_opts;
    uint8_t addrs[32];
    uint8_t ports[4];
    uint32_t seq, ack, mss, flow_word;
    uint16_t id, window;
    uint8_t ttl, tos, df;
};

static struct wg_dp *devices[2];        /* by tun_pi */
static struct flow flows[4];
static unsigned int nflows;
/* Copies of what was delivered, by packet: the oracle's view. */
static uint8_t originals[MAX_PACKETS][MAX_LEN];
static uint32_t orig_len[MAX_PACKETS];
static unsigned int npackets;
static uint8_t segment[65536], fixed[MAX_LEN];

static struct wg_dp *device(unsigned int pi)
{
    struct wg_dp_settings s;
    int ret;

    if (!devices[pi]) {
        fake_settings(&s);
        s.tun_pi = (int)pi;
        s.tun_vnet_hdr = 1;
        s.offloads = WG_DP_OFFLOAD_TUN_TCP_GRO | WG_DP_OFFLOAD_TUN_UDP_GRO;
        ret = wg_dp_create(&s, &devices[pi]);
        FUZZ_CHECK(ret == 0, "wg_dp_create: %d", ret);
    }
    return devices[pi];
}

/* The key GRO sorts packets by (offload.c's same_flow, restated), and
 * whether it tracks the packet at all. */
static bool flow_key(const uint8_t *p, uint32_t len, uint8_t key[38], size_t *key_len)
{
    bool v4 = p[0] >> 4 == 4;
    uint8_t proto = v4 ? p[9] : p[6];

    if ((proto != 6 && proto != 17) || len < (v4 ? 24u : 44u))
        return false;
    key[0] = (uint8_t)(p[0] >> 4);
    key[1] = proto;
    if (v4) {
        memcpy(key + 2, p + 12, 8);
        memcpy(key + 10, p + 20, 4);
        *key_len = 14;
    } else {
        memcpy(key + 2, p + 8, 32);
        memcpy(key + 34, p + 40, 4);
        *key_len = 38;
    }
    return true;
}

static bool same_key(unsigned int a, const uint8_t *p, uint32_t len)
{
    uint8_t ka[38], kb[38];
    size_t la = 0, lb = 0;
    bool fa = flow_key(originals[a], orig_len[a], ka, &la), fb = flow_key(p, len, kb, &lb);

    return fa == fb && la == lb && memcmp(ka, kb, la) == 0;
}

/* Which packet an output packet must be: the first of its flow (or of the
 * packets of no flow) not yet seen. */
static bool taken[MAX_PACKETS];

static unsigned int next_of_flow(const uint8_t *p, uint32_t len)
{
    for (unsigned int i = 0; i < npackets; i++)
        if (!taken[i] && same_key(i, p, len))
            return i;
    FUZZ_CHECK(false, "a packet of %u bytes out that matches no flow's next packet", len);
    return 0;
}

/* An output packet against the original it must be; `resegmented` allows
 * what segmentation rewrites. */
static void compare(const uint8_t *got, uint32_t len, bool resegmented)
{
    unsigned int i = next_of_flow(got, len);
    const uint8_t *want = originals[i];
    bool v4 = want[0] >> 4 == 4;
    uint32_t l3 = v4 ? (want[0] & 0xfu) * 4 : 40;
    uint8_t proto = v4 ? want[9] : want[6];

    FUZZ_CHECK(len == orig_len[i], "packet %u: %u bytes out, %u in", i, len, orig_len[i]);
    if (resegmented && v4 && (want[6] & 0x40) && fz_be16(got + 4) != fz_be16(want + 4)) {
        /* With DF the ID means nothing (RFC 6864): segmentation may count
         * it up from the head's. Then the header checksum changes with it,
         * if it was right to begin with. */
        bool right = fz_csum(0, want, l3) == 0xffff;
        memcpy(fixed, want, len);
        memcpy(fixed + 4, got + 4, 2);
        if (right) {
            fz_put_be16(fixed + 10, 0);
            fz_put_be16(fixed + 10, (uint16_t)~fz_csum(0, fixed, l3));
        }
        want = fixed;
    }
    for (uint32_t k = 0; k < len; k++) {
        if (resegmented && k >= l3 + (proto == 6 ? 16 : 6) && k < l3 + (proto == 6 ? 18 : 8))
            continue;                   /* the transport checksum */
        if (resegmented && proto == 6 && !(want[l3 + 13] & 0x20) && k >= l3 + 18 && k < l3 + 20)
            continue;                   /* the urgent pointer means nothing without URG */
        FUZZ_CHECK(got[k] == want[k], "packet %u (%s, %u bytes): byte %u is %02x, want %02x", i,
                   resegmented ? "resegmented" : "alone", len, k, got[k], want[k]);
    }
    taken[i] = true;
}

static void check_write(const uint8_t *w, size_t wlen, unsigned int pi, uint64_t *gro_writes)
{
    size_t hdr = (pi ? 4 : 0) + 10;
    const uint8_t *vnet = w + (pi ? 4 : 0), *pkt = w + hdr;
    uint32_t len = (uint32_t)(wlen - hdr);
    struct ref_gso g;

    FUZZ_CHECK(wlen > hdr, "a write of %zu bytes", wlen);
    if (pi)
        FUZZ_CHECK(fz_be16(w + 2) == (pkt[0] >> 4 == 6 ? 0x86dd : 0x0800), "tun_pi protocol");
    if (vnet[1] == 0) {
        for (int k = 0; k < 10; k++)
            FUZZ_CHECK(vnet[k] == 0, "a single packet's virtio header is not zero");
        compare(pkt, len, false);
        return;
    }
    (*gro_writes)++;
    g = ref_read(vnet, pkt, len);
    FUZZ_CHECK(g.ok && g.super, "a super-packet the kernel would refuse (type %u, hdr %u, gso "
               "%u, start %u, offset %u, %u bytes)", vnet[1], ref_le16(vnet + 2),
               ref_le16(vnet + 4), ref_le16(vnet + 6), ref_le16(vnet + 8), len);
    FUZZ_CHECK(ref_le16(vnet + 2) == g.hdr, "hdr_len %u, headers %u", ref_le16(vnet + 2), g.hdr);
    FUZZ_CHECK(g.segments >= 2 && g.segments <= 64, "%u segments", g.segments);
    /* NEEDS_CSUM: the field holds the pseudo-header sum, folded, not complemented. */
    FUZZ_CHECK(fz_be16(pkt + g.l3 + (g.proto == 6 ? 16 : 6)) ==
                   (uint16_t)fz_pseudo(pkt, g.proto, len - g.l3),
               "the checksum field is not the pseudo-header sum");
    if (pkt[0] >> 4 == 4)
        FUZZ_CHECK(fz_csum(0, pkt, g.l3) == 0xffff, "super-packet's IPv4 header checksum");
    for (uint32_t k = 0; k < g.segments; k++) {
        uint32_t n = ref_segment(&g, pkt, k, segment);
        compare(segment, n, true);
    }
}

static uint32_t build_flow_packet(struct fuzz_input *in, struct flow *f, uint8_t *p)
{
    uint16_t dev = fz_u16(in);          /* deviations, one bit each */
    uint32_t l3 = f->v6 ? 40 : 20 + 4u * f->ihl_opts, l4 = f->tcp ? 20u + f->opt_len : 8;
    uint32_t payload = f->mss, len;
    uint8_t flags = 0x10;               /* ACK */

    if (dev & 1)
        payload = fz_u16(in) % (f->mss + 16) + 1;
    if (dev & 2 && f->tcp)
        flags = fz_u8(in);
    if (dev & 4 && !f->v6)
        l3 = 20 + 4u * (fz_u8(in) % 11);
    if (l3 + l4 + payload > MAX_LEN)
        payload = MAX_LEN - l3 - l4;
    len = l3 + l4 + payload;
    memset(p, 0, l3 + l4);
    if (f->v6) {
        fz_put_be32(p, 0x60000000u | ((dev & 8 ? fz_u32(in) : f->flow_word) & 0x0fffffffu));
        fz_put_be16(p + 4, (uint16_t)(len - 40));
        p[6] = f->tcp ? 6 : 17;
        p[7] = dev & 16 ? fz_u8(in) : f->ttl;
        memcpy(p + 8, f->addrs, 32);
    } else {
        p[0] = (uint8_t)(0x40 | l3 / 4);
        p[1] = dev & 8 ? fz_u8(in) : f->tos;
        fz_put_be16(p + 2, (uint16_t)len);
        fz_put_be16(p + 4, dev & 32 ? fz_u16(in) : f->id);
        fz_put_be16(p + 6, (f->df ^ !!(dev & 64)) ? 0x4000 : 0);
        p[8] = dev & 16 ? fz_u8(in) : f->ttl;
        p[9] = f->tcp ? 6 : 17;
        memcpy(p + 12, f->addrs, 8);
        memset(p + 20, 1, l3 - 20);
        fz_put_be16(p + 10, (uint16_t)~fz_csum(0, p, l3));
        if (dev & 128)
            p[10] ^= fz_u8(in) | 1;     /* a broken header checksum */
    }
    memcpy(p + l3, f->ports, 4);
    if (f->tcp) {
        fz_put_be32(p + l3 + 4, dev & 256 ? fz_u32(in) : f->seq);
        fz_put_be32(p + l3 + 8, dev & 512 ? fz_u32(in) : f->ack);
        p[l3 + 12] = (uint8_t)(l4 / 4 << 4);
        p[l3 + 13] = flags;
        fz_put_be16(p + l3 + 14, dev & 1024 ? fz_u16(in) : f->window);
        memset(p + l3 + 20, dev & 2048 ? fz_u8(in) : 1, l4 - 20);
        f->seq += payload;
    } else {
        fz_put_be16(p + l3 + 4, (uint16_t)(dev & 4096 ? fz_u16(in) : len - l3));
    }
    fz_put_be16(p + l3 + (f->tcp ? 16 : 6), fz_u16(in));   /* any checksum: not looked at */
    for (uint32_t k = 0; k < payload; k++)
        p[l3 + l4 + k] = (uint8_t)(k * 7 + f->seq);
    f->id++;
    return len;
}

/* The packet the receive path would deliver (ip_trim's rule), or 0. */
static uint32_t trimmed(const uint8_t *p, uint32_t len)
{
    if (len >= 20 && p[0] >> 4 == 4) {
        uint32_t total = fz_be16(p + 2);
        return total >= 20 && total <= len ? total : 0;
    }
    if (len >= 40 && p[0] >> 4 == 6) {
        uint32_t total = 40u + fz_be16(p + 4);
        return total <= len ? total : 0;
    }
    return 0;
}

static void read_flows(struct fuzz_input *in)
{
    nflows = fz_u8(in) % 4 + 1;
    for (unsigned int i = 0; i < nflows; i++) {
        struct flow *f = &flows[i];
        uint8_t shape = fz_u8(in);

        memset(f, 0, sizeof(*f));
        f->v6 = shape & 1;
        f->tcp = !(shape & 2);
        f->df = !!(shape & 4);
        f->ihl_opts = shape & 8 ? (uint8_t)(fz_u8(in) % 11) : 0;
        f->opt_len = (uint8_t)(4 * ((shape >> 4) % 11));
        fz_bytes(in, f->addrs, 32);
        fz_bytes(in, f->ports, 4);
        f->seq = fz_u32(in);
        f->ack = fz_u32(in);
        f->mss = fz_u16(in) % 1500 + 1;
        f->flow_word = fz_u32(in);
        f->id = fz_u16(in);
        f->window = fz_u16(in);
        f->ttl = fz_u8(in);
        f->tos = fz_u8(in);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t config = fz_u8(&in);
    unsigned int pi = config & 1;
    struct wg_dp *dp = device(pi);
    struct loop *l = dp->rx;
    uint64_t tx_before = atomic_load(&dp->stats[STAT_TUN_TX_PACKETS]), gro_writes = 0;
    uint64_t gro_before = atomic_load(&dp->stats[STAT_TUN_TX_GRO]);

    fake_io_reset();
    atomic_store(&dp->tun_offloads, (config >> 1 & 1 ? WG_DP_OFFLOAD_TUN_TCP_GRO : 0) |
                                        (config >> 2 & 1 ? WG_DP_OFFLOAD_TUN_UDP_GRO : 0));
    read_flows(&in);
    npackets = 0;
    while (fz_more(&in) && npackets < MAX_PACKETS) {
        uint8_t op = fz_u8(&in);
        uint8_t *p = loop_buffer(l, 0) + (size_t)npackets * SLOT + DP_HEADROOM;
        uint32_t len;

        switch (op % 8) {
        case 5: {
            size_t got;
            const uint8_t *raw = fz_take(&in, fz_u16(&in) % MAX_LEN, &got);
            memcpy(p, raw, got);
            len = trimmed(p, (uint32_t)got);
            break;
        }
        case 6:                         /* no flow: ICMP, or too short to name one */
            memset(p, 0, 44);
            if (npackets)
                memcpy(p, originals[npackets - 1],
                       orig_len[npackets - 1] < 44 ? orig_len[npackets - 1] : 44);
            if (op & 0x80)
                p[p[0] >> 4 == 6 ? 6 : 9] = 1;
            len = trimmed(p, op & 0x40 ? (uint32_t)(fz_u8(&in) % 44) : 44);
            break;
        case 7:
            if (!npackets)
                continue;
            len = orig_len[npackets - 1];
            memcpy(p, originals[npackets - 1], len);
            break;
        default:
            len = build_flow_packet(&in, &flows[(op >> 3) % nflows], p);
            break;
        }
        if (!len)
            continue;
        memcpy(originals[npackets], p, len);
        orig_len[npackets] = len;
        taken[npackets] = false;
        l->pkts[npackets] = (struct packet){ .data = p, .len = len };
        l->deliver[npackets] = npackets;
        npackets++;
    }
    wg_tun_write_batch(dp, l, npackets);
    for (size_t w = 0; w < fake_tun_write_count(); w++) {
        size_t wlen;
        const uint8_t *wr = fake_tun_write_at(w, &wlen);
        check_write(wr, wlen, pi, &gro_writes);
    }
    for (unsigned int i = 0; i < npackets; i++)
        FUZZ_CHECK(taken[i], "packet %u of %u never written", i, npackets);
    FUZZ_CHECK(atomic_load(&dp->stats[STAT_TUN_TX_PACKETS]) - tx_before == npackets,
               "TUN packets counted");
    FUZZ_CHECK(atomic_load(&dp->stats[STAT_TUN_TX_GRO]) - gro_before == gro_writes,
               "super-packets counted");
    return 0;
}
