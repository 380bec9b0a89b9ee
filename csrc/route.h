/*
 * route.h - the MTUs of the routes through our interface, for padding.
 *
 * The kernel module pads a packet to at most dst_mtu() of the route the
 * packet took (calculate_skb_padding), which is the route's MTU metric when
 * it has one below the interface's. A TUN reader never sees that route, so
 * Python collects the routes through the TUN that carry an MTU metric and
 * hands them here as a small table: the longest prefix containing a packet's
 * destination gives its cap.
 *
 * The table is replaced whole (under the control mutex) and read without
 * locks by the packet threads, and retired through the epoch like the
 * allowed-IPs tries.
 */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include "epoch.h"
#include "wg_dp.h"

/* A prefix as two words of address and of mask (in memory order, so a
 * destination copied the same way compares with two ANDs on any CPU). */
struct route_mtu_entry {
    uint64_t addr[2];                   /* host bits cleared */
    uint64_t mask[2];
    uint8_t family;                     /* 4 or 6 */
    uint8_t cidr;
    uint32_t mtu;
};

struct route_mtus {
    struct epoch_head rcu;
    uint32_t least;                     /* the smallest MTU below (a packet padded no
                                           further than this needs no lookup) */
    uint32_t overflow;                  /* a cap for every packet; 0: none */
    uint32_t n;
    struct route_mtu_entry e[];
};

/* Replaces *slot with a table of n routes (NULL when n == 0 and no
 * overflow) and retires the old one; 0, -EINVAL or -ENOMEM (the old table
 * stays). Caller holds the control mutex. */
int wg_route_mtus_set(_Atomic(struct route_mtus *) *slot, struct epoch *epoch,
                      const struct wg_route_mtu *routes, uint32_t n, uint32_t overflow);
/* The cap of a packet to dst (4 or 16 bytes of `family`): the MTU of the
 * longest prefix containing it and the overflow cap, the smaller; 0 if none
 * applies. */
uint32_t wg_route_mtu_lookup(const struct route_mtus *t, uint8_t family, const uint8_t *dst);
/* Frees a table now; no reader may hold it. */
void wg_route_mtus_free(struct route_mtus *t);
