/*
 * udpgro_fuzz.c - libFuzzer driver for the receive side of socket.c:
 * recvmmsg batches (answered by fake_io.c as the kernel would: truncation,
 * packet-info and UDP_GRO control messages) split by wg_socket_receive into
 * the packets of a batch, checked against the driver's own split: a
 * coalesced receive of gro_size segments becomes ceil(len / gro_size)
 * packets (at most DP_UDP_GRO_MAX_SEGMENTS, the rest counted as malformed),
 * each the bytes of its datagram at the place a type 4 message needs them;
 * a truncated one is one packet marked malformed (the receive path counts
 * it); nothing is lost, duplicated or
 * reordered across recvmmsg calls and batches of DP_BURST packets; each
 * packet's source (address, port, our address and interface) is what the
 * control messages said.
 *
 * Input: per socket (IPv4, then IPv6) up to 300 datagrams: a length (up to
 * 70,000: past what fits is truncated), its bytes from a seed, a UDP_GRO
 * size (none, a divisor-ish size, any int), where it came from (IPv4, IPv6,
 * IPv4-mapped on the IPv6 socket, with or without packet info).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>

#include "../device.h"
#include "../queueing.h"
#include "../socket.h"
#include "fake_io.h"
#include "fuzz.h"

#define MAX_DGRAMS 300
#define MAX_BYTES (1u << 20)
#define MAX_DGRAM 70000

struct expect {
    uint32_t len;                       /* as received (cut to DP_MAX_PACKET) */
    bool truncated;
    uint32_t seg;                       /* segment size, 0: one packet */
    uint32_t next_off;                  /* the next packet's offset in it */
    uint32_t packets;                   /* how many packets it must make */
    uint32_t made;
    struct wg_endpoint src;
    uint64_t seed;
};

static struct wg_dp *dp;
static struct expect want[MAX_DGRAMS];
static unsigned int nwant, cur, patterned;
static uint8_t bytes[MAX_DGRAM];

/* Where a datagram came from, as sockaddr and control messages, and the
 * endpoint the data plane must make of it. */
static void make_source(struct fuzz_input *in, bool v6_socket, struct fake_dgram *m,
                        struct wg_endpoint *ep)
{
    uint8_t how = fz_u8(in), addr[16], local[16];
    uint16_t port = fz_u16(in);
    uint32_t ifindex = fz_u8(in);
    bool v4 = !v6_socket || (how & 1), info = !(how & 2);
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    fz_bytes(in, addr, 16);
    fz_bytes(in, local, 16);
    memset(m, 0, sizeof(*m));
    memset(ep, 0, sizeof(*ep));
    ep->family = v4 ? 4 : 6;
    ep->port = port;
    memcpy(ep->addr, addr, v4 ? 4 : 16);
    if (!v6_socket) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&m->from;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr, 4);
        m->from_len = sizeof(*sin);
        if (info) {
            m->pktinfo4 = true;
            m->pi4.ipi_ifindex = (int)ifindex;
            memcpy(&m->pi4.ipi_spec_dst, local, 4);
            memcpy(&m->pi4.ipi_addr, local + 4, 4);
        }
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&m->from;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        if (v4) {
            memcpy(sin6->sin6_addr.s6_addr, mapped, 12);
            memcpy(sin6->sin6_addr.s6_addr + 12, addr, 4);
        } else {
            /* Not an IPv4-mapped address by accident. */
            if (memcmp(addr, mapped, 12) == 0)
                addr[0] = ep->addr[0] = 0x20;
            memcpy(sin6->sin6_addr.s6_addr, addr, 16);
            sin6->sin6_scope_id = how & 4 ? fz_u8(in) : 0;
            ep->scope_id = sin6->sin6_scope_id;
        }
        m->from_len = sizeof(*sin6);
        if (info) {
            m->pktinfo6 = true;
            m->pi6.ipi6_ifindex = ifindex;
            if (v4) {
                memcpy(m->pi6.ipi6_addr.s6_addr, mapped, 12);
                memcpy(m->pi6.ipi6_addr.s6_addr + 12, local, 4);
                /* A v4 datagram on the v6 socket also gets IP_PKTINFO. */
                m->pktinfo4 = how & 8;
                m->pi4.ipi_ifindex = (int)ifindex;
                memcpy(&m->pi4.ipi_spec_dst, local, 4);
            } else {
                memcpy(m->pi6.ipi6_addr.s6_addr, local, 16);
            }
        }
    }
    if (info) {
        memcpy(ep->src_addr, local, v4 ? 4 : 16);
        ep->src_ifindex = ifindex;
    }
}

static void check_packet(struct loop *l, const struct packet *p)
{
    struct expect *e;
    struct wg_endpoint src;
    uint32_t size;

    while (cur < nwant && want[cur].made == want[cur].packets)
        cur++;
    FUZZ_CHECK(cur < nwant, "a packet that no datagram accounts for");
    e = &want[cur];
    if (e->truncated) {
        FUZZ_CHECK(p->drop == STAT_DROP_MALFORMED, "a truncated datagram not dropped");
    } else {
        size = e->seg && e->len - e->next_off > e->seg ? e->seg : e->len - e->next_off;
        FUZZ_CHECK(p->drop == 0, "datagram %u packet %u dropped (%d)", cur, e->made, p->drop);
        FUZZ_CHECK(p->wire_len == size, "datagram %u packet %u: %u bytes, want %u", cur,
                   e->made, p->wire_len, size);
        if (patterned != cur) {
            fz_pattern(bytes, e->len, e->seed);
            patterned = cur;
        }
        FUZZ_CHECK(memcmp(p->data - MESSAGE_DATA_HEADER_SIZE, bytes + e->next_off, size) == 0,
                   "datagram %u packet %u: bytes differ", cur, e->made);
        e->next_off += size;
    }
    wg_socket_source(l, p->msg, &src);
    FUZZ_CHECK(memcmp(&src, &e->src, sizeof(src)) == 0,
               "datagram %u: source (family %u port %u ifindex %u), want (family %u port %u "
               "ifindex %u)", cur, src.family, src.port, src.src_ifindex, e->src.family,
               e->src.port, e->src.src_ifindex);
    e->made++;
}

static void drain(int fd)
{
    struct loop *l = dp->rx;
    bool more = true;

    for (unsigned int rounds = 0; more || fake_udp_queued(); rounds++) {
        int n = wg_socket_receive(dp, l, fd, &more);

        FUZZ_CHECK(n >= 0 && n <= DP_BURST, "wg_socket_receive: %d", n);
        FUZZ_CHECK(rounds < 10000, "wg_socket_receive never runs dry");
        for (int i = 0; i < n; i++)
            check_packet(l, &l->pkts[i]);
        if (n == 0 && !fake_udp_queued())
            break;
    }
    while (cur < nwant && want[cur].made == want[cur].packets)
        cur++;
    FUZZ_CHECK(cur == nwant, "datagram %u of %u: %u of %u packets came", cur, nwant,
               cur < nwant ? want[cur].made : 0, cur < nwant ? want[cur].packets : 0);
}

static uint64_t one_socket(struct fuzz_input *in, bool v6_socket)
{
    int fd = v6_socket ? fake_udp6_fd : fake_udp4_fd;
    unsigned int count = fz_u16(in) % (MAX_DGRAMS + 1);
    uint64_t total = 0, malformed = 0;

    nwant = cur = 0;
    patterned = MAX_DGRAMS;
    while (nwant < count && fz_more(in)) {
        struct expect *e = &want[nwant];
        struct fake_dgram m;
        uint32_t len = fz_u16(in);
        uint8_t kind = fz_u8(in);
        int gro;

        if (kind & 1)
            len += fz_u8(in) << 12;     /* up to 70,000: past what a buffer takes */
        if (len > MAX_DGRAM)
            len = MAX_DGRAM;
        if (total + len > MAX_BYTES)
            break;
        total += len;
        switch (kind >> 1 & 3) {
        case 0: gro = 0; break;
        case 1: gro = fz_u16(in) % 2000 + 1; break;
        case 2: gro = (int)fz_u32(in); break;
        default: gro = len ? (int)(len / (fz_u8(in) % 130 + 1)) : 1; break;
        }
        *e = (struct expect){ .seed = fz_u64(in) };
        make_source(in, v6_socket, &m, &e->src);
        m.gro_size = gro;
        fz_pattern(bytes, len, e->seed);
        fake_udp_queue(fd, bytes, len, &m);
        e->truncated = len > DP_MAX_PACKET;
        e->len = e->truncated ? DP_MAX_PACKET : len;
        if (e->truncated || gro <= 0 || (uint32_t)gro >= e->len) {
            e->packets = 1;
        } else {
            uint32_t segs = (e->len + (uint32_t)gro - 1) / (uint32_t)gro;
            e->seg = (uint32_t)gro;
            e->packets = segs < DP_UDP_GRO_MAX_SEGMENTS ? segs : DP_UDP_GRO_MAX_SEGMENTS;
            malformed += segs - e->packets;
        }
        nwant++;
    }
    drain(fd);
    return malformed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint64_t before, malformed;
    struct wg_dp_settings s;

    if (!dp) {
        int ret;
        fake_settings(&s);
        s.offloads = WG_DP_OFFLOAD_UDP_GRO;
        ret = wg_dp_create(&s, &dp);
        FUZZ_CHECK(ret == 0, "wg_dp_create: %d", ret);
    }
    fake_io_reset();
    dp->rx->rx_next = dp->rx->rx_count = 0;
    before = atomic_load(&dp->stats[STAT_DROP_MALFORMED]);
    malformed = one_socket(&in, false);
    malformed += one_socket(&in, true);
    FUZZ_CHECK(atomic_load(&dp->stats[STAT_DROP_MALFORMED]) - before == malformed,
               "malformed counted %llu, want %llu",
               (unsigned long long)(atomic_load(&dp->stats[STAT_DROP_MALFORMED]) - before),
               (unsigned long long)malformed);
    return 0;
}
