/*
 * allowedips.h - cryptokey routing: longest-prefix match from an IPv4 or
 * IPv6 address to the peer slot that owns the prefix.
 *
 * Two path-compressed binary tries (one per family). Lookups run on the
 * packet threads without locks (they are epoch readers); insert and remove
 * must be serialized by the caller (the device's control mutex) and retire
 * unlinked nodes through the epoch, so a concurrent lookup sees either the
 * old or the new trie, never a broken one.
 */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include "epoch.h"

struct trie_node;

struct allowedips {
    _Atomic(struct trie_node *) root4;
    _Atomic(struct trie_node *) root6;
    struct trie_node **by_peer;         /* per slot: the nodes it owns, a list */
    uint32_t max_peers;
    struct epoch *epoch;
};

int wg_allowedips_init(struct allowedips *t, uint32_t max_peers, struct epoch *epoch);
/* Frees every node at once; no reader may run. */
void wg_allowedips_free(struct allowedips *t);

/* The address is cut to its prefix first (host bits cleared), as wg does. An
 * identical prefix changes owner. -EINVAL for a bad family, cidr or peer. */
int wg_allowedips_insert(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer);
/* Removes the prefix only if `peer` owns it; -ENOENT otherwise. */
int wg_allowedips_remove(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer);
/* Removes every prefix of `peer`, walking only that peer's own list. */
void wg_allowedips_remove_peer(struct allowedips *t, uint32_t peer);
/* The owner of the longest prefix containing addr, or WG_DP_PEER_NONE. */
uint32_t wg_allowedips_lookup(struct allowedips *t, uint8_t family, const uint8_t *addr);
