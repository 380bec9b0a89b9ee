/*
 * offload_fuzz.c - libFuzzer driver for the TUN read path: reads (with the
 * device's tun_pi and virtio headers in front) through wg_tun_read, which
 * splits TSO/USO super-packets (offload.c) into the TX arena, checked read by
 * read against ref_offload.h's own reading and segmentation: the same reads
 * taken or dropped (counted as malformed), and every packet byte for byte
 * what a correct split makes (lengths, IDs, sequence numbers, flags,
 * checksums).
 *
 * Input: a byte choosing the device's headers (tun_pi, IFF_VNET_HDR), the
 * MTU (which sets how much of a read lands in place), then up to 8 records:
 * a raw read (16-bit length, then its bytes), a well-formed super-packet
 * (family, IP options or an IPv6 extension header, TCP or UDP, TCP options
 * and flags, sequence number, ID, DF, gso_size, payload length; the payload
 * made from a seed), or a plain packet with or without NEEDS_CSUM; any of
 * them may then have one byte changed, and the reads queued so far may be
 * drained before the next, so that reads share batches or not.
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

#define MAX_RECORDS 8
#define MAX_READ (14 + 65535)

static struct wg_dp *devices[4];        /* by tun_pi | vnet_hdr << 1 */

struct read_rec {
    uint8_t *data;                      /* the whole read, headers in front */
    uint32_t len;
    uint32_t next_seg;                  /* of its segments, the next expected */
    struct ref_gso g;
};

static struct read_rec reads[MAX_RECORDS];
static uint8_t read_bufs[MAX_RECORDS][MAX_READ];
static unsigned int nreads, checked;    /* reads queued, and fully matched */
static uint8_t expect_buf[65536];

static struct wg_dp *device(unsigned int variant)
{
    struct wg_dp_settings s;
    int ret;

    if (!devices[variant]) {
        fake_settings(&s);
        s.tun_pi = variant & 1;
        s.tun_vnet_hdr = variant >> 1 & 1;
        ret = wg_dp_create(&s, &devices[variant]);
        FUZZ_CHECK(ret == 0, "wg_dp_create: %d", ret);
    }
    return devices[variant];
}

static uint32_t prefix(unsigned int variant)
{
    return (variant & 1 ? 4 : 0) + (variant & 2 ? 10 : 0);
}

/* The read that the next packet out of wg_tun_read must come from: the
 * first not finished, past those the reference drops. */
static struct read_rec *current_read(void)
{
    while (checked < nreads && (!reads[checked].g.ok ||
                                reads[checked].next_seg == reads[checked].g.segments))
        checked++;
    return checked < nreads ? &reads[checked] : NULL;
}

/* got[at, at + n) against want[0, n): the first byte that differs. */
static void compare(const struct read_rec *r, const uint8_t *got, const uint8_t *want,
                    uint32_t at, uint32_t n)
{
    for (uint32_t i = 0; memcmp(got + at, want, n) != 0 && i < n; i++)
        FUZZ_CHECK(got[at + i] == want[i], "read %u segment %u of %u (l3 %u, hdr %u, gso %u): "
                   "byte %u is %02x, want %02x", checked, r->next_seg, r->g.segments, r->g.l3,
                   r->g.hdr, r->g.gso, at + i, got[at + i], want[i]);
}

static void check_packet(unsigned int variant, const uint8_t *got, uint32_t len)
{
    struct read_rec *r = current_read();
    uint32_t hdr = prefix(variant), want_len;
    const uint8_t *pkt;

    FUZZ_CHECK(r, "a packet of %u bytes that no read accounts for", len);
    pkt = r->data + hdr;
    if (r->g.super) {
        /* The headers built, the payload compared where it lies in the read. */
        want_len = ref_segment_headers(&r->g, pkt, r->next_seg, expect_buf);
        FUZZ_CHECK(len == want_len, "read %u segment %u: %u bytes, want %u", checked,
                   r->next_seg, len, want_len);
        compare(r, got, expect_buf, 0, r->g.hdr);
        compare(r, got, pkt + ref_payload_at(&r->g, r->next_seg), r->g.hdr, len - r->g.hdr);
    } else {
        want_len = r->len - hdr;
        FUZZ_CHECK(len == want_len, "read %u segment %u: %u bytes, want %u", checked,
                   r->next_seg, len, want_len);
        memcpy(expect_buf, pkt, want_len);
        if (r->g.fill)
            fz_put_be16(expect_buf + r->g.fill_at, r->g.fill_value);
        compare(r, got, expect_buf, 0, len);
    }
    r->next_seg++;
}

/* Reads until the queue is empty, checking each packet as it comes. */
static void drain(struct wg_dp *dp, unsigned int variant)
{
    struct loop *l = dp->tx;
    bool more = true;

    for (unsigned int rounds = 0; more; rounds++) {
        int n = wg_tun_read(dp, l, &more);

        FUZZ_CHECK(n >= 0, "wg_tun_read: %d", n);
        FUZZ_CHECK(rounds < 100000, "wg_tun_read never runs dry");
        for (int i = 0; i < n; i++)
            check_packet(variant, l->pkts[i].data, l->pkts[i].len);
        if (n == 0 && fake_tun_queue_left() == 0 && l->pending_next >= l->pending.segments)
            break;
    }
    FUZZ_CHECK(current_read() == NULL, "read %u: %u of %u segments came out", checked,
               checked < nreads ? reads[checked].next_seg : 0,
               checked < nreads ? reads[checked].g.segments : 0);
}

/* A well-formed super-packet as a kernel would hand it over; its length. */
static uint32_t build_super(struct fuzz_input *in, uint8_t *vnet, uint8_t *pkt)
{
    uint8_t shape = fz_u8(in), flags = fz_u8(in);
    bool v6 = shape & 1, tcp = !(shape & 2), ext = v6 && (shape & 4);
    uint32_t l3 = v6 ? 40 + (ext ? 8 : 0) : 20 + 4 * ((shape >> 3) % 11);
    uint32_t l4 = tcp ? 20 + 4 * (fz_u8(in) % 11) : 8;
    /* Mostly the sizes of real flows; now and then one to fill a batch. */
    uint32_t gso = fz_u16(in) % 9000 + 1, payload = fz_u16(in) % (shape & 0x80 ? 65535 : 4000) + 1u;
    uint32_t len;
    uint8_t proto = tcp ? 6 : 17;

    if (l3 + l4 + payload > 65535)
        payload = 65535 - l3 - l4;
    len = l3 + l4 + payload;
    memset(pkt, 0, l3 + l4);
    if (v6) {
        fz_put_be32(pkt, 0x60000000u | (fz_u32(in) & 0x0fffffffu));
        fz_put_be16(pkt + 4, (uint16_t)(len - 40));
        pkt[6] = ext ? 0 : proto;
        pkt[7] = fz_u8(in);
        fz_bytes(in, pkt + 8, 32);
        if (ext) {
            pkt[40] = proto;            /* a hop-by-hop header of 8 bytes: PadN */
            pkt[42] = 1;
            pkt[43] = 4;
        }
    } else {
        pkt[0] = (uint8_t)(0x40 | l3 / 4);
        pkt[1] = fz_u8(in);
        fz_put_be16(pkt + 2, (uint16_t)len);
        fz_put_be16(pkt + 4, fz_u16(in));
        fz_put_be16(pkt + 6, flags & 1 ? 0x4000 : 0);
        pkt[8] = fz_u8(in);
        pkt[9] = proto;
        fz_bytes(in, pkt + 12, 8);
        memset(pkt + 20, 1, l3 - 20);   /* NOP options */
        fz_put_be16(pkt + 10, (uint16_t)~fz_csum(0, pkt, l3));
    }
    fz_bytes(in, pkt + l3, 4);          /* ports */
    if (tcp) {
        fz_put_be32(pkt + l3 + 4, fz_u32(in));
        fz_put_be32(pkt + l3 + 8, fz_u32(in));
        pkt[l3 + 12] = (uint8_t)(l4 / 4 << 4);
        pkt[l3 + 13] = flags;
        fz_put_be16(pkt + l3 + 14, fz_u16(in));
        memset(pkt + l3 + 20, 1, l4 - 20);
    } else {
        fz_put_be16(pkt + l3 + 4, (uint16_t)(len - l3));
    }
    fz_pattern(pkt + l3 + l4, payload, fz_u64(in));
    /* The checksum field holds the pseudo-header sum, as the kernel leaves it. */
    fz_put_be16(pkt + l3 + (tcp ? 16 : 6), (uint16_t)fz_pseudo(pkt, proto, len - l3));
    memset(vnet, 0, 10);
    vnet[0] = 1;                        /* NEEDS_CSUM */
    vnet[1] = (uint8_t)((tcp ? (v6 ? 4 : 1) : 5) | (flags & 0x40 && tcp ? 0x80 : 0));
    put_le16(vnet + 2, (uint16_t)(flags & 2 ? l3 + l4 : fz_u16(in) % (len + 1)));
    put_le16(vnet + 4, (uint16_t)gso);
    put_le16(vnet + 6, (uint16_t)l3);
    put_le16(vnet + 8, tcp ? 16 : 6);
    return len;
}

/* A plain packet: its bytes from a seed, NEEDS_CSUM somewhere inside or not. */
static uint32_t build_plain(struct fuzz_input *in, uint8_t *vnet, uint8_t *pkt)
{
    uint8_t how = fz_u8(in);
    uint32_t len = fz_u16(in) % (how & 0x80 ? 65535 : 2000) + 1;

    fz_pattern(pkt, len, fz_u64(in));
    memset(vnet, 0, 10);
    if (how & 1 && len >= 2) {
        uint32_t start = fz_u16(in) % (len - 1);
        vnet[0] = 1;
        put_le16(vnet + 6, (uint16_t)start);
        put_le16(vnet + 8, (uint16_t)(fz_u16(in) % (len - 1 - start)));
    }
    return len;
}

static void queue_read(struct fuzz_input *in, unsigned int variant)
{
    struct read_rec *r = &reads[nreads];
    uint32_t hdr = prefix(variant);
    uint8_t kind = fz_u8(in), *buf = read_bufs[nreads], vnet[10];
    static const uint8_t no_vnet[10];
    size_t len;

    switch (kind % 3) {
    case 0: {
        size_t want = fz_u16(in) % MAX_READ;
        const uint8_t *src = fz_take(in, want, &len);
        memcpy(buf, src, len);
        break;
    }
    default:
        len = hdr + (kind % 3 == 1 ? build_super(in, vnet, buf + hdr)
                                   : build_plain(in, vnet, buf + hdr));
        memset(buf, 0, hdr);
        if (variant & 2)
            memcpy(buf + hdr - 10, vnet, 10);
        if (variant & 1)
            fz_put_be16(buf + 2, buf[hdr] >> 4 == 6 ? 0x86dd : 0x0800);
        break;
    }
    if (kind & 0x80 && len) {
        uint16_t at = fz_u16(in);
        buf[at % len] ^= fz_u8(in) | 1;
    }
    r->data = buf;
    r->len = (uint32_t)len;
    r->next_seg = 0;
    /* An empty read is dropped; without IFF_VNET_HDR nothing is cut. */
    if (len <= hdr)
        r->g = (struct ref_gso){ .ok = false };
    else
        r->g = ref_read(variant & 2 ? buf + hdr - 10 : no_vnet, buf + hdr, (uint32_t)(len - hdr));
    if (kind % 3 == 1 && !(kind & 0x80) && variant & 2)
        FUZZ_CHECK(r->g.ok && r->g.super, "a well-formed super-packet the reference refuses");
    fake_tun_queue(buf, len);
    nreads++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    unsigned int variant = fz_u8(&in) % 4;
    struct wg_dp *dp = device(variant);
    uint64_t malformed_before = atomic_load(&dp->stats[STAT_DROP_MALFORMED]), dropped = 0;

    fake_io_reset();
    nreads = checked = 0;
    dp->tx->pending.segments = 0;
    dp->tx->pending_next = 0;
    atomic_store(&dp->mtu, fz_u16(&in));
    while (fz_more(&in) && nreads < MAX_RECORDS) {
        uint8_t flush = fz_u8(&in);
        queue_read(&in, variant);
        if (flush & 1)
            drain(dp, variant);
    }
    drain(dp, variant);
    for (unsigned int i = 0; i < nreads; i++)
        dropped += !reads[i].g.ok;
    FUZZ_CHECK(atomic_load(&dp->stats[STAT_DROP_MALFORMED]) - malformed_before == dropped,
               "%llu reads counted as malformed, want %llu",
               (unsigned long long)(atomic_load(&dp->stats[STAT_DROP_MALFORMED]) - malformed_before),
               (unsigned long long)dropped);
    return 0;
}
