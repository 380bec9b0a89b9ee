/*
 * icmp_fuzz.c - libFuzzer driver for the destination-unreachable builder
 * (icmp.c) on arbitrary packets, as the TX path hands them over (an IPv4
 * packet of at least 20 bytes, or an IPv6 one of at least 40).
 *
 * The driver decides on its own, from the RFCs, whether a reply is due:
 * none to a fragment other than the first, to a multicast, broadcast or
 * unspecified address on either side, or to an ICMP error (RFC 1812 4.3.2.7,
 * RFC 4443 2.4 e: for IPv6 also behind extension headers; a packet too short
 * to tell stays unanswered), and at most DP_ICMP_PER_SECOND a second. A reply
 * written to the TUN (behind the tun_pi and virtio headers the device has)
 * must be a well-formed ICMP or ICMPv6 destination unreachable back to the
 * sender, from the unreachable address, quoting the start of the packet (576
 * and 1280 bytes at most), with checksums that verify (summed here
 * independently of checksum.c).
 *
 * Input: a byte choosing the device's TUN headers, then records: a packet
 * (16-bit length, then its bytes), the last packet again up to 256 times
 * (to reach the rate limit), or time moving on.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>

#include "../device.h"
#include "../queueing.h"
#include "fake_io.h"
#include "fuzz.h"

#define NSEC 1000000000ull
#define MAX_PACKET 1600

static struct wg_dp *devices[4];        /* by tun_pi | vnet_hdr << 1 */

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

static bool v4_special(const uint8_t *a)
{
    return a[0] >= 224 || (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0);
}

static bool v6_special(const uint8_t *a)
{
    static const uint8_t any[16];
    return a[0] == 0xff || memcmp(a, any, 16) == 0;
}

static bool v4_reply_due(const uint8_t *pkt, uint32_t len)
{
    uint32_t ihl = (pkt[0] & 0xfu) * 4;

    if (ihl < 20 || ihl > len || (fz_be16(pkt + 6) & 0x1fff) || v4_special(pkt + 12) ||
        v4_special(pkt + 16))
        return false;
    if (pkt[9] == 1) {
        if (len <= ihl)
            return false;               /* cannot tell whether it is an error */
        switch (pkt[ihl]) {
        case 3: case 4: case 5: case 11: case 12:
            return false;               /* errors */
        }
    }
    return true;
}

/* Whether an IPv6 packet is an ICMPv6 error, or too short to tell. */
static bool v6_error_or_unknown(const uint8_t *pkt, uint32_t len)
{
    uint32_t off = 40;
    uint8_t next = pkt[6];

    for (;;) {
        switch (next) {
        case 0: case 43: case 60:       /* hop-by-hop, routing, destination options */
            if (off + 2 > len)
                return true;
            next = pkt[off];
            off += 8 + pkt[off + 1] * 8u;
            break;
        case 51:                        /* authentication header */
            if (off + 2 > len)
                return true;
            next = pkt[off];
            off += 8 + pkt[off + 1] * 4u;
            break;
        case 44:                        /* fragment */
            if (off + 8 > len)
                return true;
            if (fz_be16(pkt + off + 2) & 0xfff8)
                return false;           /* a later fragment: no header to see */
            next = pkt[off];
            off += 8;
            break;
        case 58:
            return off >= len || pkt[off] < 128;
        default:
            return false;
        }
    }
}

static bool v6_reply_due(const uint8_t *pkt, uint32_t len)
{
    return !v6_special(pkt + 8) && !v6_special(pkt + 24) && !v6_error_or_unknown(pkt, len);
}

static void check_reply(const uint8_t *w, size_t wlen, unsigned int variant, const uint8_t *pkt,
                        uint32_t len)
{
    size_t hdr = (variant & 1 ? 4 : 0) + (variant & 2 ? 10 : 0);
    const uint8_t *r = w + hdr;
    bool v4 = pkt[0] >> 4 == 4;
    uint32_t quote = len < (v4 ? 548u : 1232u) ? len : (v4 ? 548u : 1232u);
    uint32_t ip_len = v4 ? 20 : 40;
    static const uint8_t zero[10];

    FUZZ_CHECK(wlen == hdr + ip_len + 8 + quote, "reply of %zu bytes for a quote of %u", wlen,
               quote);
    if (variant & 1)
        FUZZ_CHECK(w[0] == 0 && w[1] == 0 && fz_be16(w + 2) == (v4 ? 0x0800 : 0x86dd),
                   "tun_pi header");
    if (variant & 2)
        FUZZ_CHECK(memcmp(w + (variant & 1 ? 4 : 0), zero, 10) == 0, "virtio header not zero");
    FUZZ_CHECK(memcmp(r + ip_len + 8, pkt, quote) == 0, "quote differs from the packet");
    FUZZ_CHECK(r[ip_len + 4] == 0 && r[ip_len + 5] == 0 && r[ip_len + 6] == 0 &&
               r[ip_len + 7] == 0, "unused field not zero");
    if (v4) {
        FUZZ_CHECK(r[0] == 0x45 && fz_be16(r + 2) == 28 + quote && r[9] == 1 && r[8] > 0,
                   "IPv4 header");
        FUZZ_CHECK((fz_be16(r + 6) & 0x3fff) == 0, "reply is a fragment");
        FUZZ_CHECK(memcmp(r + 12, pkt + 16, 4) == 0 && memcmp(r + 16, pkt + 12, 4) == 0,
                   "addresses not swapped");
        FUZZ_CHECK(fz_csum(0, r, 20) == 0xffff, "IPv4 header checksum");
        FUZZ_CHECK(r[20] == 3, "not destination unreachable");
        FUZZ_CHECK(fz_csum(0, r + 20, 8 + quote) == 0xffff, "ICMP checksum");
    } else {
        FUZZ_CHECK(r[0] == 0x60 && r[1] == 0 && r[2] == 0 && r[3] == 0, "IPv6 first word");
        FUZZ_CHECK(fz_be16(r + 4) == 8 + quote && r[6] == 58 && r[7] > 0, "IPv6 header");
        FUZZ_CHECK(memcmp(r + 8, pkt + 24, 16) == 0 && memcmp(r + 24, pkt + 8, 16) == 0,
                   "addresses not swapped");
        FUZZ_CHECK(r[40] == 1, "not destination unreachable");
        FUZZ_CHECK(fz_csum(fz_pseudo(r, 58, 8 + quote), r + 40, 8 + quote) == 0xffff,
                   "ICMPv6 checksum");
    }
}

struct rate {
    uint64_t window;
    uint32_t count;
};

static bool rate_allows(struct rate *r, uint64_t now)
{
    if (now - r->window >= NSEC) {
        r->window = now;
        r->count = 0;
    }
    return r->count++ < DP_ICMP_PER_SECOND;
}

static void one_packet(struct wg_dp *dp, unsigned int variant, struct rate *rate,
                       const uint8_t *pkt, uint32_t len, uint64_t now)
{
    uint8_t copy[MAX_PACKET];
    size_t before = fake_tun_write_count(), wlen;
    bool v4 = len >= 20 && pkt[0] >> 4 == 4, due;

    /* Only what the TX path would hand over. */
    if (!v4 && !(len >= 40 && pkt[0] >> 4 == 6))
        return;
    memcpy(copy, pkt, len);
    due = v4 ? v4_reply_due(pkt, len) : v6_reply_due(pkt, len);
    if (due)
        due = rate_allows(rate, now);
    wg_icmp_unreachable(dp, copy, len, now);
    FUZZ_CHECK(memcmp(copy, pkt, len) == 0, "the packet was changed");
    FUZZ_CHECK(fake_tun_write_count() == before + due, "reply %s", due ? "missing" : "unwanted");
    if (due) {
        const uint8_t *reply = fake_tun_write_at(before, &wlen);
        check_reply(reply, wlen, variant, pkt, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    unsigned int variant = fz_u8(&in) % 4;
    struct wg_dp *dp = device(variant);
    struct rate rate = { 0, 0 };
    uint64_t now = NSEC / 2;
    const uint8_t *pkt = NULL;
    size_t len = 0;

    fake_io_reset();
    dp->icmp_window_ns = 0;
    dp->icmp_in_window = 0;
    while (fz_more(&in)) {
        uint8_t op = fz_u8(&in);

        switch (op % 4) {
        case 0:
            now += (uint64_t)fz_u32(&in) * 1000;
            break;
        case 1:
            for (unsigned int k = fz_u8(&in) + 1u; pkt && k > 0; k--)
                one_packet(dp, variant, &rate, pkt, (uint32_t)len, now);
            fake_io_reset();
            break;
        default:
            pkt = fz_take(&in, fz_u16(&in) % MAX_PACKET, &len);
            one_packet(dp, variant, &rate, pkt, (uint32_t)len, now);
            break;
        }
    }
    return 0;
}
