/*
 * offload.c - TUN offloads; see offload.h.
 *
 * Reading (TSO/USO): the kernel hands over one super-packet of up to 64 KB
 * with a virtio header saying how to cut it (gso_size) and that the
 * transport checksum is ours to compute. Each segment gets a copy of the
 * headers with what differs fixed as the kernel's own segmentation does it
 * (tcp_gso_segment, __udp_gso_segment): IP length, IPv4 ID (+1 a segment)
 * and header checksum, TCP sequence number, FIN and PSH only on the last
 * segment, CWR only on the first; then a full transport checksum, since a
 * peer without offloads (Debian's wireguard-go) hands the packet to a kernel
 * that verifies it. The header lengths come from the packet itself: the
 * virtio header's hdr_len is only a hint (the length of the skb's linear
 * part), as wireguard-go also found.
 *
 * Writing (GRO): opened packets of one TCP or UDP flow that follow each
 * other go to the TUN as one super-packet: the head's headers with the
 * total length, and the other packets' payloads behind it through iovecs
 * (no copy). The checksum field gets the pseudo-header sum and the virtio
 * header NEEDS_CSUM, which the kernel takes as verified: Poly1305 has
 * already proved every byte is what the peer sealed, as the kernel module
 * trusts it (CHECKSUM_UNNECESSARY after decryption), so the payload is not
 * read again. What may be merged follows the kernel's tcp_gro_receive and
 * udp_gro_receive: an IPv4 header checksum that verifies; same addresses,
 * ports and IP fields that the segmentation would copy from the head (TOS,
 * TTL, DF, the IPv6 flow word); for TCP also the same ACK number, window and
 * options, in-sequence data, only ACK or ACK|PSH, and nothing after a PSH;
 * every segment the size of the first except a shorter last one, which
 * closes the super-packet.
 */
#define _GNU_SOURCE
#include "offload.h"

#include <errno.h>
#include <string.h>

#include "checksum.h"
#include "queueing.h"

#define PROTO_TCP 6
#define PROTO_UDP 17
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80
#define IPV4_DF 0x4000
#define IPV4_MF_OFFSET 0x3fff               /* more fragments, fragment offset */

/* ---- reading ------------------------------------------------------------ */

/* NEEDS_CSUM on a plain packet: the field holds the pseudo-header sum; the
 * rest is folded over it. */
static int fill_checksum(const uint8_t *vnet, uint8_t *pkt, uint32_t len)
{
    uint32_t start = get_le16(vnet + 6), offset = get_le16(vnet + 8);

    if (start + offset + 2 > len)
        return -EINVAL;
    put_be16(pkt + start + offset, wg_csum_fold(wg_csum_add(0, pkt + start, len - start)));
    return 0;
}

/* The IP header of a super-packet: family, length, protocol; 0 or -EINVAL. */
static int read_ip(const uint8_t *pkt, uint32_t len, uint32_t l3_len, struct gso_packet *g)
{
    if (len >= 20 && pkt[0] >> 4 == 4) {
        g->family = 4;
        return l3_len >= 20 && (pkt[0] & 0xf) * 4u == l3_len && get_be16(pkt + 2) == len &&
                       pkt[9] == g->proto && !(get_be16(pkt + 6) & IPV4_MF_OFFSET)
                   ? 0
                   : -EINVAL;
    }
    if (len >= 40 && pkt[0] >> 4 == 6) {
        g->family = 6;
        /* Extension headers, if any, are copied as they are. */
        return get_be16(pkt + 4) + 40u == len && l3_len >= 40 &&
                       (l3_len > 40 || pkt[6] == g->proto)
                   ? 0
                   : -EINVAL;
    }
    return -EINVAL;
}

int wg_offload_read(const uint8_t *vnet, uint8_t *pkt, uint32_t len, struct gso_packet *g)
{
    uint8_t type = vnet[1] & (uint8_t)~VNET_GSO_ECN;
    uint32_t l4_len, offset = get_le16(vnet + 8);

    memset(g, 0, sizeof(*g));
    g->pkt = pkt;
    g->len = len;
    g->segments = 1;
    if (vnet[1] == VNET_GSO_NONE)
        return vnet[0] & VNET_F_NEEDS_CSUM ? fill_checksum(vnet, pkt, len) : 0;
    if (type != VNET_GSO_TCPV4 && type != VNET_GSO_TCPV6 && type != VNET_GSO_UDP_L4)
        return -EINVAL;
    g->proto = type == VNET_GSO_UDP_L4 ? PROTO_UDP : PROTO_TCP;
    g->l3_len = get_le16(vnet + 6);
    g->seg_size = get_le16(vnet + 4);
    if (!(vnet[0] & VNET_F_NEEDS_CSUM) || !g->seg_size || get_le16(vnet + 2) > len ||
        read_ip(pkt, len, g->l3_len, g) ||
        (type == VNET_GSO_TCPV4 && g->family != 4) || (type == VNET_GSO_TCPV6 && g->family != 6))
        return -EINVAL;
    if (g->proto == PROTO_TCP) {
        if (g->l3_len + 20 > len || offset != 16)
            return -EINVAL;
        l4_len = (pkt[g->l3_len + 12] >> 4) * 4u;
        if (l4_len < 20)
            return -EINVAL;
    } else {
        l4_len = 8;
        if (offset != 6)
            return -EINVAL;
    }
    g->hdr_len = g->l3_len + l4_len;
    if (g->hdr_len >= len)
        return -EINVAL;
    g->segments = (len - g->hdr_len + g->seg_size - 1) / g->seg_size;
    return 0;
}

uint32_t wg_offload_segment_len(const struct gso_packet *g, uint32_t k)
{
    uint32_t off = g->hdr_len + k * g->seg_size;

    if (g->segments == 1)
        return g->len;
    return g->hdr_len + (g->len - off < g->seg_size ? g->len - off : g->seg_size);
}

uint32_t wg_offload_segment(const struct gso_packet *g, uint32_t k, uint8_t *dst)
{
    uint32_t seg_len = wg_offload_segment_len(g, k), l4_len, sum;
    uint8_t *l4 = dst + g->l3_len;

    if (g->segments == 1 && !g->hdr_len) {
        memcpy(dst, g->pkt, g->len);
        return g->len;
    }
    memcpy(dst, g->pkt, g->hdr_len);
    sum = wg_csum_copy(0, dst + g->hdr_len, g->pkt + g->hdr_len + k * g->seg_size,
                       seg_len - g->hdr_len);
    if (g->family == 4) {
        put_be16(dst + 2, (uint16_t)seg_len);
        put_be16(dst + 4, (uint16_t)(get_be16(dst + 4) + k));
        put_be16(dst + 10, 0);
        put_be16(dst + 10, wg_csum_fold(wg_csum_add(0, dst, g->l3_len)));
    } else {
        put_be16(dst + 4, (uint16_t)(seg_len - 40));
    }
    l4_len = seg_len - g->l3_len;
    if (g->proto == PROTO_TCP) {
        put_be32(l4 + 4, get_be32(l4 + 4) + k * g->seg_size);
        if (k + 1 < g->segments)
            l4[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
        if (k > 0)
            l4[13] &= (uint8_t)~TCP_CWR;
        put_be16(l4 + 16, 0);
    } else {
        put_be16(l4 + 4, (uint16_t)l4_len);
        put_be16(l4 + 6, 0);
    }
    sum = wg_csum_add(sum, l4, g->hdr_len - g->l3_len);
    sum = wg_csum_fold(sum + wg_csum_pseudo(dst, g->family, g->proto, l4_len));
    /* UDP sends a computed zero as all ones (zero means "no checksum"). */
    if (g->proto == PROTO_UDP && sum == 0)
        sum = 0xffff;
    put_be16(l4 + (g->proto == PROTO_TCP ? 16 : 6), (uint16_t)sum);
    return seg_len;
}

/* ---- GRO ---------------------------------------------------------------- */

/* What a packet may be merged as, and its header length; GRO_NONE if it
 * must go alone. */
static uint8_t gro_kind_of(const struct packet *p, uint32_t *hdr_len)
{
    const uint8_t *ip = p->data;
    uint32_t l3, l4;
    uint8_t proto;

    if (ip[0] >> 4 == 4) {
        /* No options, no fragments, a header checksum that verifies: what the
         * kernel's inet_gro_receive takes. A bad header must reach the kernel
         * as it came, to be dropped there, not behind the head's fresh one. */
        if (ip[0] != 0x45 || (get_be16(ip + 6) & IPV4_MF_OFFSET) ||
            wg_csum_fold(wg_csum_add(0, ip, 20)) != 0)
            return GRO_NONE;
        l3 = 20;
        proto = ip[9];
    } else {
        l3 = 40;                        /* no extension headers */
        proto = ip[6];
    }
    if (proto == PROTO_TCP) {
        if (p->len < l3 + 20)
            return GRO_NONE;
        l4 = (ip[l3 + 12] >> 4) * 4u;
        /* Only ACK, or ACK|PSH: SYN, FIN, RST, URG, ECE and CWR go alone. */
        if (l4 < 20 || (ip[l3 + 13] & (uint8_t)~TCP_PSH) != TCP_ACK)
            return GRO_NONE;
    } else if (proto == PROTO_UDP) {
        l4 = 8;
        if (p->len < l3 + 8 || get_be16(ip + l3 + 4) != p->len - l3)
            return GRO_NONE;
    } else {
        return GRO_NONE;
    }
    if (l3 + l4 >= p->len)
        return GRO_NONE;                /* no payload: nothing to merge */
    *hdr_len = l3 + l4;
    if (proto == PROTO_TCP)
        return l3 == 20 ? GRO_TCP4 : GRO_TCP6;
    return l3 == 20 ? GRO_UDP4 : GRO_UDP6;
}

/* Addresses, protocol and ports: which flow a packet belongs to. */
static uint32_t flow_hash(const uint8_t *ip, uint32_t *key_len, const uint8_t **key)
{
    uint32_t h = 2166136261u, len;
    const uint8_t *k;

    if (ip[0] >> 4 == 4) {
        k = ip + 12;
        len = 8;
    } else {
        k = ip + 8;
        len = 32;
    }
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ k[i]) * 16777619u;
    *key = k;
    *key_len = len;
    return h;
}

static bool same_flow(const uint8_t *a, const uint8_t *b)
{
    uint32_t l3;

    if (a[0] >> 4 != b[0] >> 4)
        return false;
    if (a[0] >> 4 == 4) {
        l3 = 20;
        if (memcmp(a + 12, b + 12, 8) || a[9] != b[9])
            return false;
    } else {
        l3 = 40;
        if (memcmp(a + 8, b + 8, 32) || a[6] != b[6])
            return false;
    }
    return memcmp(a + l3, b + l3, 4) == 0;          /* ports */
}

/* The IP fields every segment inherits from the head must agree. */
static bool same_ip_fields(const struct gro_item *it, const uint8_t *h, const uint8_t *p)
{
    if (it->kind == GRO_TCP4 || it->kind == GRO_UDP4) {
        uint16_t flags = get_be16(p + 6);
        /* TOS and TTL; DF; without DF the IDs must count up as the
         * segmentation will make them. */
        if (h[1] != p[1] || h[8] != p[8] || ((get_be16(h + 6) ^ flags) & IPV4_DF))
            return false;
        return (flags & IPV4_DF) || get_be16(p + 4) == (uint16_t)(get_be16(h + 4) + it->count);
    }
    return memcmp(h, p, 4) == 0 && h[7] == p[7];     /* class, flow label; hop limit */
}

static bool can_append(const struct gro_item *it, const struct packet *head,
                       const struct packet *p, uint8_t kind, uint32_t hdr_len)
{
    const uint8_t *h = head->data, *q = p->data;
    uint32_t size = p->len - hdr_len;

    if (!it->open || it->kind != kind || it->hdr_len != hdr_len || size > it->seg_size ||
        it->count >= GRO_MAX_SEGMENTS || it->hdr_len + it->total + size > 65535 ||
        !same_ip_fields(it, h, q))
        return false;
    if (kind == GRO_TCP4 || kind == GRO_TCP6) {
        uint32_t t = kind == GRO_TCP4 ? 20 : 40;
        /* ACK number, then data offset, flags (less PSH) and window, then options. */
        return memcmp(h + t + 8, q + t + 8, 4) == 0 && get_be32(q + t + 4) == it->next_seq &&
               h[t + 12] == q[t + 12] &&
               (h[t + 13] & (uint8_t)~TCP_PSH) == (q[t + 13] & (uint8_t)~TCP_PSH) &&
               memcmp(h + t + 14, q + t + 14, 2) == 0 &&
               memcmp(h + t + 20, q + t + 20, hdr_len - t - 20) == 0;
    }
    return true;
}

static void item_start(struct gro_item *it, struct packet *pkts, unsigned int i, uint8_t kind,
                       uint32_t hdr_len)
{
    struct packet *p = &pkts[i];

    *it = (struct gro_item){ .head = i, .tail = i, .count = 1, .hdr_len = hdr_len,
                             .kind = kind, .open = kind != GRO_NONE };
    p->next = DP_BURST;
    if (kind == GRO_NONE)
        return;
    it->seg_size = it->last_size = it->total = p->len - hdr_len;
    if (kind == GRO_TCP4 || kind == GRO_TCP6) {
        uint32_t t = kind == GRO_TCP4 ? 20 : 40;
        it->next_seq = get_be32(p->data + t + 4) + it->seg_size;
        if (p->data[t + 13] & TCP_PSH)
            it->open = false;
    }
}

static void item_append(struct gro_item *it, struct packet *pkts, unsigned int i)
{
    struct packet *p = &pkts[i];
    uint32_t size = p->len - it->hdr_len;

    pkts[it->tail].next = i;
    p->next = DP_BURST;
    it->tail = i;
    it->count++;
    it->total += size;
    it->last_size = size;
    it->next_seq += size;
    if (size < it->seg_size)
        it->open = false;               /* a short segment is the last */
    if (it->kind == GRO_TCP4 || it->kind == GRO_TCP6) {
        uint32_t t = it->kind == GRO_TCP4 ? 20 : 40;
        if (p->data[t + 13] & TCP_PSH) {
            it->psh = true;
            it->open = false;
        }
    }
}

/* The table slot of a packet's flow: the slot holding it, or the empty one
 * where it would go. The table has twice as many slots as a batch has
 * packets, so there always is one. */
static uint32_t table_slot(struct gro_table *t, uint32_t stamp, struct packet *pkts,
                           const struct gro_item *items, const uint8_t *ip)
{
    const uint8_t *key;
    uint32_t key_len, slot = flow_hash(ip, &key_len, &key) & (GRO_TABLE_SIZE - 1);

    while (t->stamp[slot] == stamp &&
           !same_flow(pkts[items[t->item[slot]].head].data, ip))
        slot = (slot + 1) & (GRO_TABLE_SIZE - 1);
    return slot;
}

unsigned int wg_gro_build(struct packet *pkts, const unsigned int *list, unsigned int n,
                          unsigned int kinds, struct gro_table *t, struct gro_item *items)
{
    unsigned int count = 0;
    uint32_t stamp;

    _Static_assert((GRO_TABLE_SIZE & (GRO_TABLE_SIZE - 1)) == 0, "a power of two");
    _Static_assert(GRO_TABLE_SIZE > DP_BURST, "a free slot is always left");
    if (++t->now == 0) {
        /* Once in 2^32 batches: old stamps must not look current. */
        memset(t->stamp, 0, sizeof(t->stamp));
        t->now = 1;
    }
    stamp = t->now;
    for (unsigned int j = 0; j < n; j++) {
        unsigned int i = list[j];
        struct packet *p = &pkts[i];
        uint32_t hdr_len = 0, slot;
        uint8_t kind = gro_kind_of(p, &hdr_len);
        bool flow = p->data[0] >> 4 == 4 ? p->data[9] == PROTO_TCP || p->data[9] == PROTO_UDP
                                         : p->data[6] == PROTO_TCP || p->data[6] == PROTO_UDP;

        if (!(kinds & (1u << kind)))
            kind = GRO_NONE;
        if (!flow || p->len < (p->data[0] >> 4 == 4 ? 24u : 44u)) {
            /* Not a flow we track (or too short to name one): alone. */
            item_start(&items[count++], pkts, i, GRO_NONE, 0);
            continue;
        }
        slot = table_slot(t, stamp, pkts, items, p->data);
        if (t->stamp[slot] == stamp && kind != GRO_NONE &&
            can_append(&items[t->item[slot]], &pkts[items[t->item[slot]].head], p, kind,
                       hdr_len)) {
            item_append(&items[t->item[slot]], pkts, i);
            continue;
        }
        /* A new item, and from now on the flow's latest: nothing of the flow
         * may join an older one, which would reorder it. */
        item_start(&items[count], pkts, i, kind, hdr_len);
        t->stamp[slot] = stamp;
        t->item[slot] = (uint16_t)count++;
    }
    return count;
}

unsigned int wg_gro_prepare(struct packet *pkts, const struct gro_item *it, uint32_t prefix,
                            struct iovec *iov, uint8_t *saved)
{
    struct packet *head = &pkts[it->head];
    uint8_t *ip = head->data, *vnet = ip - VNET_HDR_LEN;
    bool tcp = it->kind == GRO_TCP4 || it->kind == GRO_TCP6;
    int family = it->kind == GRO_TCP4 || it->kind == GRO_UDP4 ? 4 : 6;
    uint32_t l3 = family == 4 ? 20 : 40, l4_len = it->hdr_len - l3 + it->total;
    unsigned int n = 1;

    memcpy(saved, ip, it->hdr_len);
    if (family == 4) {
        put_be16(ip + 2, (uint16_t)(it->hdr_len + it->total));
        put_be16(ip + 10, 0);
        put_be16(ip + 10, wg_csum_fold(wg_csum_add(0, ip, 20)));
    } else {
        put_be16(ip + 4, (uint16_t)(it->hdr_len + it->total - 40));
    }
    if (tcp && it->psh)
        ip[l3 + 13] |= TCP_PSH;
    if (!tcp)
        put_be16(ip + l3 + 4, (uint16_t)l4_len);
    put_be16(ip + l3 + (tcp ? 16 : 6),
             wg_csum_fold_partial(wg_csum_pseudo(ip, family, tcp ? PROTO_TCP : PROTO_UDP,
                                                 l4_len)));
    memset(vnet, 0, VNET_HDR_LEN);
    vnet[0] = VNET_F_NEEDS_CSUM;
    vnet[1] = tcp ? (family == 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6) : VNET_GSO_UDP_L4;
    put_le16(vnet + 2, (uint16_t)it->hdr_len);
    put_le16(vnet + 4, (uint16_t)it->seg_size);
    put_le16(vnet + 6, (uint16_t)l3);
    put_le16(vnet + 8, tcp ? 16 : 6);
    iov[0] = (struct iovec){ ip - prefix, prefix + head->len };
    for (unsigned int i = head->next; i != DP_BURST; i = pkts[i].next)
        iov[n++] = (struct iovec){ pkts[i].data + it->hdr_len, pkts[i].len - it->hdr_len };
    return n;
}

void wg_gro_restore(struct packet *pkts, const struct gro_item *it, const uint8_t *saved)
{
    memcpy(pkts[it->head].data, saved, it->hdr_len);
}
