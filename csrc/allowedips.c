/*
 * allowedips.c - path-compressed binary tries for cryptokey routing.
 *
 * A node holds a prefix (key and mask, as two host-order 64-bit words; an
 * IPv4 address is the top 32 bits of the first word), the peer that owns it
 * or WG_DP_PEER_NONE for a branching node, and two children chosen by the
 * first bit after the prefix. Every node on a lookup's path is checked
 * against the whole address, so a path may skip bits (path compression) and
 * a writer may splice nodes in and out with single pointer stores.
 *
 * Invariants kept by the writers: a node without a peer has two children;
 * children's prefixes extend their parent's. Writers also keep parent links
 * and a per-peer list of owned nodes; readers never look at either.
 */
#include "allowedips.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "wg_dp.h"

struct trie_node {
    _Atomic(struct trie_node *) child[2];
    _Atomic uint32_t peer;
    uint8_t cidr;
    uint8_t family;
    uint64_t key[2];
    uint64_t mask[2];
    struct trie_node *parent;           /* writer only */
    struct trie_node *owned_prev;       /* writer only: the owner's list */
    struct trie_node *owned_next;
    struct epoch_head rcu;
};

static unsigned int max_bits(uint8_t family)
{
    return family == 4 ? 32 : 128;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void addr_to_key(uint8_t family, const uint8_t *addr, uint64_t key[2])
{
    if (family == 4) {
        key[0] = (uint64_t)(((uint32_t)addr[0] << 24) | ((uint32_t)addr[1] << 16) |
                            ((uint32_t)addr[2] << 8) | addr[3]) << 32;
        key[1] = 0;
    } else {
        key[0] = load_be64(addr);
        key[1] = load_be64(addr + 8);
    }
}

static void cidr_to_mask(unsigned int cidr, uint64_t mask[2])
{
    mask[0] = cidr == 0 ? 0 : cidr >= 64 ? UINT64_MAX : UINT64_MAX << (64 - cidr);
    mask[1] = cidr <= 64 ? 0 : cidr >= 128 ? UINT64_MAX : UINT64_MAX << (128 - cidr);
}

/* Bit `i` of the key, counted from the most significant bit of word 0. */
static unsigned int key_bit(const uint64_t key[2], unsigned int i)
{
    return i < 64 ? (key[0] >> (63 - i)) & 1 : (key[1] >> (127 - i)) & 1;
}

static bool node_matches(const struct trie_node *n, const uint64_t key[2])
{
    return ((key[0] & n->mask[0]) == n->key[0]) & ((key[1] & n->mask[1]) == n->key[1]);
}

/* Number of leading bits two keys share, at most `limit`. */
static unsigned int common_bits(const uint64_t a[2], const uint64_t b[2], unsigned int limit)
{
    unsigned int n;
    uint64_t x = a[0] ^ b[0];

    if (x)
        n = (unsigned int)__builtin_clzll(x);
    else if ((x = a[1] ^ b[1]))
        n = 64 + (unsigned int)__builtin_clzll(x);
    else
        n = 128;
    return n < limit ? n : limit;
}

static _Atomic(struct trie_node *) *root_of(struct allowedips *t, uint8_t family)
{
    return family == 4 ? &t->root4 : &t->root6;
}

static struct trie_node *load(_Atomic(struct trie_node *) *slot)
{
    return atomic_load_explicit(slot, memory_order_acquire);
}

static void publish(_Atomic(struct trie_node *) *slot, struct trie_node *n)
{
    atomic_store_explicit(slot, n, memory_order_release);
}

static struct trie_node *node_new(uint8_t family, const uint64_t key[2], unsigned int cidr,
                                  uint32_t peer)
{
    struct trie_node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->family = family;
    n->cidr = (uint8_t)cidr;
    cidr_to_mask(cidr, n->mask);
    n->key[0] = key[0] & n->mask[0];
    n->key[1] = key[1] & n->mask[1];
    atomic_init(&n->peer, peer);
    return n;
}

static void node_free(struct epoch_head *head)
{
    free((char *)head - offsetof(struct trie_node, rcu));
}

static void owned_link(struct allowedips *t, struct trie_node *n, uint32_t peer)
{
    n->owned_prev = NULL;
    n->owned_next = t->by_peer[peer];
    if (n->owned_next)
        n->owned_next->owned_prev = n;
    t->by_peer[peer] = n;
}

static void owned_unlink(struct allowedips *t, struct trie_node *n, uint32_t peer)
{
    if (n->owned_prev)
        n->owned_prev->owned_next = n->owned_next;
    else
        t->by_peer[peer] = n->owned_next;
    if (n->owned_next)
        n->owned_next->owned_prev = n->owned_prev;
    n->owned_prev = n->owned_next = NULL;
}

static void set_owner(struct allowedips *t, struct trie_node *n, uint32_t peer)
{
    uint32_t old = atomic_load_explicit(&n->peer, memory_order_relaxed);

    if (old == peer)
        return;
    if (old != WG_DP_PEER_NONE)
        owned_unlink(t, n, old);
    owned_link(t, n, peer);
    atomic_store_explicit(&n->peer, peer, memory_order_relaxed);
}

/* The pointer that holds n: its parent's child slot, or the root. */
static _Atomic(struct trie_node *) *slot_of(struct allowedips *t, struct trie_node *n)
{
    if (!n->parent)
        return root_of(t, n->family);
    return &n->parent->child[key_bit(n->key, n->parent->cidr)];
}

static bool valid(struct allowedips *t, uint8_t family, unsigned int cidr, uint32_t peer)
{
    return (family == 4 || family == 6) && cidr <= max_bits(family) && peer < t->max_peers;
}

int wg_allowedips_init(struct allowedips *t, uint32_t max_peers, struct epoch *epoch)
{
    atomic_init(&t->root4, NULL);
    atomic_init(&t->root6, NULL);
    t->by_peer = calloc(max_peers ? max_peers : 1, sizeof(*t->by_peer));
    if (!t->by_peer)
        return -ENOMEM;
    t->max_peers = max_peers;
    t->epoch = epoch;
    return 0;
}

static void free_subtree(struct trie_node *n)
{
    /* Depth is bounded by 129, so recursion is safe. */
    if (!n)
        return;
    free_subtree(atomic_load_explicit(&n->child[0], memory_order_relaxed));
    free_subtree(atomic_load_explicit(&n->child[1], memory_order_relaxed));
    free(n);
}

void wg_allowedips_free(struct allowedips *t)
{
    free_subtree(atomic_load(&t->root4));
    free_subtree(atomic_load(&t->root6));
    atomic_store(&t->root4, NULL);
    atomic_store(&t->root6, NULL);
    free(t->by_peer);
    t->by_peer = NULL;
}

/*
 * Puts `fresh` (fully built) where `n` was, with `n` as its child, or makes
 * a branching node holding both. One store publishes the change.
 */
static int splice_above(struct allowedips *t, _Atomic(struct trie_node *) *slot,
                        struct trie_node *n, struct trie_node *fresh, unsigned int common)
{
    struct trie_node *top = fresh;

    if (common < fresh->cidr) {
        top = node_new(fresh->family, fresh->key, common, WG_DP_PEER_NONE);
        if (!top)
            return -ENOMEM;
        atomic_init(&top->child[key_bit(fresh->key, common)], fresh);
        fresh->parent = top;
    }
    atomic_init(&top->child[key_bit(n->key, common)], n);
    top->parent = n->parent;
    n->parent = top;
    publish(slot, top);
    (void)t;
    return 0;
}

int wg_allowedips_insert(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer)
{
    _Atomic(struct trie_node *) *slot;
    struct trie_node *n, *parent = NULL, *fresh;
    uint64_t key[2];
    int ret;

    if (!valid(t, family, cidr, peer))
        return -EINVAL;
    addr_to_key(family, addr, key);
    slot = root_of(t, family);
    while ((n = load(slot))) {
        unsigned int common = common_bits(key, n->key, cidr < n->cidr ? cidr : n->cidr);
        if (common == n->cidr && common == cidr) {
            set_owner(t, n, peer);          /* the same prefix: a new owner */
            return 0;
        }
        if (common < n->cidr) {
            fresh = node_new(family, key, cidr, peer);
            if (!fresh)
                return -ENOMEM;
            fresh->parent = parent;
            ret = splice_above(t, slot, n, fresh, common);
            if (ret) {
                free(fresh);
                return ret;
            }
            owned_link(t, fresh, peer);
            return 0;
        }
        parent = n;
        slot = &n->child[key_bit(key, n->cidr)];
    }
    fresh = node_new(family, key, cidr, peer);
    if (!fresh)
        return -ENOMEM;
    fresh->parent = parent;
    publish(slot, fresh);
    owned_link(t, fresh, peer);
    return 0;
}

/* After n lost its owner: drop nodes that no longer carry information. */
static void compact(struct allowedips *t, struct trie_node *n)
{
    while (n && atomic_load_explicit(&n->peer, memory_order_relaxed) == WG_DP_PEER_NONE) {
        struct trie_node *c0 = atomic_load_explicit(&n->child[0], memory_order_relaxed);
        struct trie_node *c1 = atomic_load_explicit(&n->child[1], memory_order_relaxed);
        struct trie_node *child = c0 ? c0 : c1, *parent = n->parent;

        if (c0 && c1)
            return;                         /* still a branching node */
        if (child)
            child->parent = parent;
        /* A reader already at n still finds valid children: n is freed only
         * after every reader has moved on. */
        publish(slot_of(t, n), child);
        wg_epoch_retire(t->epoch, &n->rcu, node_free);
        if (child)
            return;                         /* parent keeps its child count */
        n = parent;
    }
}

static void remove_node(struct allowedips *t, struct trie_node *n, uint32_t peer)
{
    owned_unlink(t, n, peer);
    atomic_store_explicit(&n->peer, WG_DP_PEER_NONE, memory_order_relaxed);
    compact(t, n);
}

int wg_allowedips_remove(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer)
{
    struct trie_node *n;
    uint64_t key[2], mask[2];

    if (!valid(t, family, cidr, peer))
        return -EINVAL;
    addr_to_key(family, addr, key);
    cidr_to_mask(cidr, mask);
    key[0] &= mask[0];
    key[1] &= mask[1];
    n = load(root_of(t, family));
    while (n && n->cidr <= cidr && node_matches(n, key)) {
        if (n->cidr == cidr) {
            if (atomic_load_explicit(&n->peer, memory_order_relaxed) != peer)
                return -ENOENT;
            remove_node(t, n, peer);
            return 0;
        }
        n = load(&n->child[key_bit(key, n->cidr)]);
    }
    return -ENOENT;
}

void wg_allowedips_remove_peer(struct allowedips *t, uint32_t peer)
{
    struct trie_node *n;

    if (peer >= t->max_peers)
        return;
    while ((n = t->by_peer[peer]))
        remove_node(t, n, peer);
}

uint32_t wg_allowedips_lookup(struct allowedips *t, uint8_t family, const uint8_t *addr)
{
    uint32_t best = WG_DP_PEER_NONE;
    unsigned int bits;
    struct trie_node *n;
    uint64_t key[2];

    if (family != 4 && family != 6)
        return WG_DP_PEER_NONE;
    bits = max_bits(family);
    addr_to_key(family, addr, key);
    n = load(root_of(t, family));
    while (n && node_matches(n, key)) {
        uint32_t peer = atomic_load_explicit(&n->peer, memory_order_relaxed);
        if (peer != WG_DP_PEER_NONE)
            best = peer;
        if (n->cidr >= bits)
            break;
        n = load(&n->child[key_bit(key, n->cidr)]);
    }
    return best;
}
