/*
 * ref_offload.h - the fuzz drivers' own reading of a virtio-net header and
 * their own segmentation of a TSO/USO super-packet, written from the virtio
 * spec and the kernel's documented behaviour (tcp_gso_segment,
 * __udp_gso_segment), independent of offload.c and checksum.c.
 *
 * What a header may say, as offload.h states the data plane's contract:
 * GSO_NONE (optionally NEEDS_CSUM: the checksum at csum_start + csum_offset
 * completed over the rest of the packet) or TCPV4 / TCPV6 / UDP_L4 (with or
 * without the ECN bit), which must have NEEDS_CSUM, a gso_size, a hint
 * hdr_len within the packet, csum_start at the transport header and
 * csum_offset at its checksum, an IP header that matches (IPv4: IHL * 4 ==
 * csum_start, total length == the packet, not a fragment; IPv6: payload
 * length + 40 == the packet, extension headers allowed), a TCP header of at
 * least 20 bytes, and some payload. Each segment carries the headers with
 * the IP length, IPv4 ID (+1 a segment) and header checksum, TCP sequence
 * (+gso_size a segment), FIN and PSH (last only), CWR (first only), UDP
 * length and the full transport checksum (UDP: 0 sent as 0xffff).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"

struct ref_gso {
    bool ok;                            /* the header is one the data plane takes */
    bool super;                         /* TCPV4/TCPV6/UDP_L4: cut into segments */
    uint32_t len, l3, hdr, gso, segments;
    uint8_t proto;                      /* 6 or 17 */
    /* GSO_NONE with NEEDS_CSUM: where the checksum goes and its value. */
    bool fill;
    uint32_t fill_at;
    uint16_t fill_value;
};

static inline uint16_t ref_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline struct ref_gso ref_read(const uint8_t *vnet, const uint8_t *pkt, uint32_t len)
{
    struct ref_gso g = { .len = len, .segments = 1 };
    uint8_t flags = vnet[0], type = vnet[1];
    uint32_t start = ref_le16(vnet + 6), offset = ref_le16(vnet + 8), l4;

    if (type == 0) {
        if (flags & 1) {
            if (start + offset + 2 > len)
                return g;
            g.fill = true;
            g.fill_at = start + offset;
            g.fill_value = (uint16_t)~fz_csum(0, pkt + start, len - start);
        }
        g.ok = true;
        return g;
    }
    type &= 0x7f;
    if (type != 1 && type != 4 && type != 5)
        return g;
    g.proto = type == 5 ? 17 : 6;
    g.gso = ref_le16(vnet + 4);
    g.l3 = start;
    if (!(flags & 1) || !g.gso || ref_le16(vnet + 2) > len)
        return g;
    if (len >= 20 && pkt[0] >> 4 == 4) {
        if (type == 4 || g.l3 < 20 || (pkt[0] & 0xfu) * 4 != g.l3 || fz_be16(pkt + 2) != len ||
            pkt[9] != g.proto || (fz_be16(pkt + 6) & 0x3fff))
            return g;
    } else if (len >= 40 && pkt[0] >> 4 == 6) {
        if (type == 1 || g.l3 < 40 || fz_be16(pkt + 4) + 40u != len ||
            (g.l3 == 40 && pkt[6] != g.proto))
            return g;
    } else {
        return g;
    }
    if (g.proto == 6) {
        if (g.l3 + 20 > len || offset != 16)
            return g;
        l4 = (pkt[g.l3 + 12] >> 4) * 4u;
        if (l4 < 20)
            return g;
    } else {
        if (offset != 6)
            return g;
        l4 = 8;
    }
    g.hdr = g.l3 + l4;
    if (g.hdr >= len)
        return g;
    g.segments = (len - g.hdr + g.gso - 1) / g.gso;
    g.super = g.ok = true;
    return g;
}

/* The headers of segment k of an accepted super-packet into out (g->hdr
 * bytes, every field and checksum as the whole segment has them); returns
 * the segment's length. Its payload is the g->gso bytes (fewer in the last)
 * at ref_payload_at(g, k) in the super-packet, unchanged: the offload driver
 * compares those in place, without a copy. */
static inline uint32_t ref_payload_at(const struct ref_gso *g, uint32_t k)
{
    return g->hdr + k * g->gso;
}

static inline uint32_t ref_segment_headers(const struct ref_gso *g, const uint8_t *pkt,
                                           uint32_t k, uint8_t *out)
{
    uint32_t off = ref_payload_at(g, k);
    uint32_t payload = g->len - off < g->gso ? g->len - off : g->gso;
    uint32_t seg_len = g->hdr + payload, l4_len = seg_len - g->l3, sum;
    uint8_t *l4 = out + g->l3;
    bool v4 = pkt[0] >> 4 == 4, last = k + 1 == g->segments;

    memcpy(out, pkt, g->hdr);
    if (v4) {
        fz_put_be16(out + 2, (uint16_t)seg_len);
        fz_put_be16(out + 4, (uint16_t)(fz_be16(pkt + 4) + k));
        fz_put_be16(out + 10, 0);
        fz_put_be16(out + 10, (uint16_t)~fz_csum(0, out, g->l3));
    } else {
        fz_put_be16(out + 4, (uint16_t)(seg_len - 40));
    }
    /* The transport checksum: pseudo-header, transport header (an even
     * length, so the sums chain), then the payload where it lies. */
    if (g->proto == 6) {
        fz_put_be32(l4 + 4, fz_be32(pkt + g->l3 + 4) + k * g->gso);
        if (!last)
            l4[13] &= (uint8_t)~0x09;   /* FIN, PSH */
        if (k > 0)
            l4[13] &= (uint8_t)~0x80;   /* CWR */
        fz_put_be16(l4 + 16, 0);
        sum = fz_csum(fz_pseudo(out, 6, l4_len), l4, g->hdr - g->l3);
        sum = (uint16_t)~fz_csum(sum, pkt + off, payload);
        fz_put_be16(l4 + 16, (uint16_t)sum);
    } else {
        fz_put_be16(l4 + 4, (uint16_t)l4_len);
        fz_put_be16(l4 + 6, 0);
        sum = fz_csum(fz_pseudo(out, 17, l4_len), l4, g->hdr - g->l3);
        sum = (uint16_t)~fz_csum(sum, pkt + off, payload);
        fz_put_be16(l4 + 6, (uint16_t)(sum ? sum : 0xffff));
    }
    return seg_len;
}

/* Segment k of an accepted super-packet into out; returns its length. */
static inline uint32_t ref_segment(const struct ref_gso *g, const uint8_t *pkt, uint32_t k,
                                   uint8_t *out)
{
    uint32_t seg_len = ref_segment_headers(g, pkt, k, out);

    memcpy(out + g->hdr, pkt + ref_payload_at(g, k), seg_len - g->hdr);
    return seg_len;
}
