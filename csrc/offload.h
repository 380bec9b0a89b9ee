/*
 * offload.h - TUN offloads (wireguard-go's tun/offload_linux.go): the
 * virtio_net_hdr in front of each TUN packet, the split of TSO/USO
 * super-packets into segments before sealing, and the coalescing (GRO) of
 * opened packets of one flow into super-packets written to the TUN at once.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "messages.h"

struct packet;

/* struct virtio_net_hdr (include/uapi/linux/virtio_net.h): fields are
 * little-endian; Debian's headers lack GSO_UDP_L4 (Linux 6.2). */
enum vnet_hdr {
    VNET_HDR_LEN = 10,
    VNET_F_NEEDS_CSUM = 1,
    VNET_GSO_NONE = 0,
    VNET_GSO_TCPV4 = 1,
    VNET_GSO_TCPV6 = 4,
    VNET_GSO_UDP_L4 = 5,
    VNET_GSO_ECN = 0x80,
};

/* A packet read from the TUN, as its virtio header describes it. */
struct gso_packet {
    const uint8_t *pkt;
    uint32_t len;
    uint32_t l3_len;                    /* IP header(s): the transport header's offset */
    uint32_t hdr_len;                   /* IP and transport headers */
    uint32_t seg_size;                  /* payload bytes per segment */
    uint32_t segments;                  /* 1 for a plain packet */
    uint8_t proto;                      /* 6 or 17 */
    uint8_t family;                     /* 4 or 6 */
};

/*
 * Reads the virtio header in front of a TUN packet. A plain packet gets the
 * checksum the kernel left to us (NEEDS_CSUM) and g->segments = 1; a
 * super-packet is checked (its header lengths are recomputed from the packet,
 * not taken from the virtio header) and described in *g. Returns 0, or
 * -EINVAL for a header or packet that cannot be what it claims.
 */
int wg_offload_read(const uint8_t *vnet, uint8_t *pkt, uint32_t len, struct gso_packet *g);
/* Segment k of a super-packet into dst: its headers fixed up (lengths, IPv4
 * ID and checksum, TCP sequence and flags) and full transport checksum,
 * which peers without offloads verify. Returns its length. */
uint32_t wg_offload_segment(const struct gso_packet *g, uint32_t k, uint8_t *dst);
/* The length of segment k. */
uint32_t wg_offload_segment_len(const struct gso_packet *g, uint32_t k);

/* ---- GRO ---------------------------------------------------------------- */

enum gro_kind { GRO_NONE, GRO_TCP4, GRO_TCP6, GRO_UDP4, GRO_UDP6 };
#define GRO_MAX_SEGMENTS 64             /* packets in one super-packet (a kernel GSO packet's) */

/* One write to the TUN: a packet alone, or a head and the packets whose
 * payloads follow it (linked through packet->next). */
struct gro_item {
    unsigned int head, tail, count;
    uint32_t hdr_len;
    uint32_t seg_size;                  /* payload of every segment but the last */
    uint32_t last_size;
    uint32_t total;                     /* payload bytes of all segments */
    uint32_t next_seq;                  /* TCP: the sequence number that may follow */
    uint8_t kind;
    bool open;                          /* may take more */
    bool psh;                           /* TCP: PSH arrived on the last segment */
};

/* Flows of one batch: their latest item. The zero value is ready to use. */
#define GRO_TABLE_SIZE (2 * DP_BURST)
struct gro_table {
    uint32_t now;                       /* the batch's stamp */
    uint32_t stamp[GRO_TABLE_SIZE];     /* == now: the slot is in use */
    uint16_t item[GRO_TABLE_SIZE];
};

/* Groups the opened packets pkts[list[0..n-1]] into items, in order;
 * `kinds` are the GRO_* kinds allowed (bit 1 << kind). Returns the count. */
unsigned int wg_gro_build(struct packet *pkts, const unsigned int *list, unsigned int n,
                          unsigned int kinds, struct gro_table *t, struct gro_item *items);
/* Turns an item of several packets into a super-packet: the head's headers
 * fixed up (lengths, the pseudo-header sum NEEDS_CSUM asks for), the virtio
 * header written just before it, and iovecs for one writev. `saved` gets the
 * head's original headers (hdr_len bytes) for wg_gro_restore. Returns the
 * iovec count. */
unsigned int wg_gro_prepare(struct packet *pkts, const struct gro_item *it, uint32_t prefix,
                            struct iovec *iov, uint8_t *saved);
/* Puts the head's headers back after a refused write. */
void wg_gro_restore(struct packet *pkts, const struct gro_item *it, const uint8_t *saved);
