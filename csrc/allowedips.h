/*
 * allowedips.h - cryptokey routing: longest-prefix match from an IPv4 or
 * IPv6 address to the peer slot that owns the prefix.
 *
 * One multibit trie per family (stride 8; allowedips.c explains the design).
 * Lookups run on the packet threads without locks (they are epoch readers);
 * insert and remove must be serialized by the caller (the device's control
 * mutex) and retire what they unlink through the epoch, so a concurrent
 * lookup sees every node either before or after a change, never half-made.
 */
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "epoch.h"

struct allowedips_prefix;
struct allowedips_garbage;
struct wg_allowed_ip;

struct allowedips {
    /* Per family: 0, a node, or a single prefix (a leaf: low bit set). */
    _Atomic uintptr_t root4;
    _Atomic uintptr_t root6;
    struct allowedips_prefix **by_peer; /* per slot: the prefixes it owns, a list */
    size_t count;                       /* prefixes owned, all peers together */
    uint32_t max_peers;
    struct epoch *epoch;
    struct allowedips_garbage *garbage; /* what the current change unlinked */
    int32_t alloc_budget;               /* self-tests: allocations left; negative: no limit */
};

int wg_allowedips_init(struct allowedips *t, uint32_t max_peers, struct epoch *epoch);
/* Frees every node at once; no reader may run. */
void wg_allowedips_free(struct allowedips *t);

/* The address is cut to its prefix first (host bits cleared), as wg does. An
 * identical prefix changes owner. -EINVAL for a bad family, cidr or peer,
 * -ENOMEM (and no change) when memory runs out. */
int wg_allowedips_insert(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer);
/* Removes the prefix only if `peer` owns it; -ENOENT otherwise. */
int wg_allowedips_remove(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer);
/* Removes every prefix of `peer`, walking only that peer's own list. */
void wg_allowedips_remove_peer(struct allowedips *t, uint32_t peer);
/* The owner of the longest prefix containing addr, or WG_DP_PEER_NONE. */
uint32_t wg_allowedips_lookup(struct allowedips *t, uint8_t family, const uint8_t *addr);

/* The owner of exactly this prefix (host bits cleared first): 0 and *peer,
 * -ENOENT if no peer owns it, -EINVAL for a bad family or cidr. */
int wg_allowedips_owner(struct allowedips *t, uint8_t family, const uint8_t *addr,
                        uint8_t cidr, uint32_t *peer);
/* The prefixes `peer` owns, in the order given (one given again moved to the
 * end): the first `max` into out; returns how many it owns. */
size_t wg_allowedips_list(struct allowedips *t, uint32_t peer, struct wg_allowed_ip *out,
                          size_t max);
/* How many prefixes the peers own, together. */
size_t wg_allowedips_count(const struct allowedips *t);

/* For the self-tests: 0 if every structural rule allowedips.c states holds
 * (and the owner lists agree with the tries), else the number of the broken
 * rule. Counts the nodes and prefixes when the pointers are not NULL. */
int wg_allowedips_check(struct allowedips *t, size_t *nodes, size_t *prefixes);
