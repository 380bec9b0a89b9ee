/*
 * icmp.c - the destination-unreachable reply the kernel module sends back
 * when a packet's destination belongs to no peer (icmp_ndo_send in its
 * wg_xmit), written into the TUN so the sender learns at once.
 *
 * The reply's source is the unreachable destination itself: routed through
 * the tunnel, it passes reverse-path filtering, while one of our own
 * addresses would be a martian. No reply for ICMP errors, fragments or
 * multicast, and at most DP_ICMP_PER_SECOND per second, as RFC 1812 and
 * RFC 4443 ask. Runs on the TX thread only.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include <string.h>

#include "checksum.h"
#include "queueing.h"
#include "tun.h"

#define IPV4_QUOTE_MAX (576 - 20 - 8)   /* RFC 1812: the reply fits in 576 bytes */
#define IPV6_QUOTE_MAX (1280 - 40 - 8)  /* RFC 4443: the reply fits in the minimum MTU */
#define PROTO_ICMP 1
#define PROTO_ICMPV6 58

static bool rate_ok(struct wg_dp *dp, uint64_t now)
{
    if (now - dp->icmp_window_ns >= 1000000000u) {
        dp->icmp_window_ns = now;
        dp->icmp_in_window = 0;
    }
    return dp->icmp_in_window++ < DP_ICMP_PER_SECOND;
}

static bool v4_special(const uint8_t *a)
{
    return a[0] >= 224 || (a[0] | a[1] | a[2] | a[3]) == 0;   /* multicast, broadcast, any */
}

static bool v4_is_error(const uint8_t *pkt, uint32_t len, uint32_t ihl)
{
    uint8_t type;

    if (pkt[9] != PROTO_ICMP)
        return false;
    if (len < ihl + 1)
        return true;                        /* cannot tell: stay quiet */
    type = pkt[ihl];
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

static uint32_t build_v4(const uint8_t *pkt, uint32_t len, uint8_t *out)
{
    uint32_t ihl = (pkt[0] & 0xf) * 4u, quote = len < IPV4_QUOTE_MAX ? len : IPV4_QUOTE_MAX;

    if (ihl < 20 || ihl > len || (get_be16(pkt + 6) & 0x1fff) || v4_special(pkt + 16) ||
        v4_special(pkt + 12) || v4_is_error(pkt, len, ihl))
        return 0;
    memset(out, 0, 28);
    out[0] = 0x45;
    out[1] = 0xc0;                          /* internetwork control, as Linux sends */
    put_be16(out + 2, (uint16_t)(28 + quote));
    out[8] = 64;
    out[9] = PROTO_ICMP;
    memcpy(out + 12, pkt + 16, 4);          /* from the unreachable address */
    memcpy(out + 16, pkt + 12, 4);
    put_be16(out + 10, wg_csum_fold(wg_csum_add(0, out, 20)));
    out[20] = 3;                            /* destination unreachable */
    out[21] = 1;                            /* host unreachable, as the kernel module */
    memcpy(out + 28, pkt, quote);
    put_be16(out + 22, wg_csum_fold(wg_csum_add(0, out + 20, 8 + quote)));
    return 28 + quote;
}

static bool v6_special(const uint8_t *a)
{
    static const uint8_t any[16];
    return a[0] == 0xff || memcmp(a, any, 16) == 0;
}

/* RFC 4443 2.4 (e): no error about an ICMPv6 error, which may sit behind
 * extension headers; a chain cut short cannot be told apart, so it gets no
 * reply either. A later fragment carries no ICMPv6 header to look at. */
static bool v6_is_error(const uint8_t *pkt, uint32_t len)
{
    uint32_t off = 40, step;
    uint8_t next = pkt[6];

    for (;;) {
        switch (next) {
        case 0: case 43: case 60: case 51:  /* hop-by-hop, routing, destination, AH */
            if (len < off + 2)
                return true;
            /* Lengths count 8 bytes past the first 8; AH's 4 bytes past the first 8. */
            step = next == 51 ? (pkt[off + 1] + 2u) * 4 : (pkt[off + 1] + 1u) * 8;
            next = pkt[off];
            off += step;
            break;
        case 44:                            /* fragment */
            if (len < off + 8)
                return true;
            if (get_be16(pkt + off + 2) & 0xfff8)
                return false;
            next = pkt[off];
            off += 8;
            break;
        case PROTO_ICMPV6:
            return len < off + 1 || pkt[off] < 128;
        default:
            return false;
        }
    }
}

static uint32_t build_v6(const uint8_t *pkt, uint32_t len, uint8_t *out)
{
    uint32_t quote = len < IPV6_QUOTE_MAX ? len : IPV6_QUOTE_MAX, sum;
    uint8_t pseudo[8] = { 0 };

    if (v6_special(pkt + 24) || v6_special(pkt + 8) || v6_is_error(pkt, len))
        return 0;
    memset(out, 0, 48);
    out[0] = 0x60;
    put_be16(out + 4, (uint16_t)(8 + quote));
    out[6] = PROTO_ICMPV6;
    out[7] = 64;
    memcpy(out + 8, pkt + 24, 16);
    memcpy(out + 24, pkt + 8, 16);
    out[40] = 1;                            /* destination unreachable */
    out[41] = 3;                            /* address unreachable, as the kernel module */
    memcpy(out + 48, pkt, quote);
    put_be16(pseudo + 2, (uint16_t)(8 + quote));
    pseudo[7] = PROTO_ICMPV6;
    sum = wg_csum_add(0, out + 8, 32);      /* source and destination */
    sum = wg_csum_add(sum, pseudo, sizeof(pseudo));
    sum = wg_csum_add(sum, out + 40, 8 + quote);
    put_be16(out + 42, wg_csum_fold(sum));
    return 48 + quote;
}

void wg_icmp_unreachable(struct wg_dp *dp, const uint8_t *pkt, uint32_t len, uint64_t now)
{
    uint8_t buf[DP_HEADROOM + 1280];
    uint8_t *out = buf + DP_HEADROOM;
    uint32_t n;

    if (atomic_load_explicit(&dp->tun_fd, memory_order_relaxed) < 0)
        return;
    /* The caller checked the header length for the version it saw. */
    n = pkt[0] >> 4 == 4 ? build_v4(pkt, len, out) : build_v6(pkt, len, out);
    if (!n || !rate_ok(dp, now))
        return;
    if (wg_tun_write(dp, out, n) == 0)
        stat_add(dp, STAT_ICMP_TX, 1);
}
