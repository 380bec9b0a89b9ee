/*
 * allowedips.c - cryptokey routing: a multibit trie per address family.
 *
 * Theory of operation
 *
 * A gateway may hold a million prefixes (2^20 peers, an IPv4 and an IPv6
 * prefix each), and every packet is looked up. A binary trie, even path
 * compressed, follows one node per branching bit: some 20 dependent loads at
 * a million random prefixes, nearly every one a cache miss, and it needs a
 * branching node per prefix besides the prefix's own. This trie consumes
 * the address a byte at a time (stride 8), so a lookup visits at most 4
 * nodes for IPv4 and 16 for IPv6, and in practice 3 or 4: the top two
 * levels (at most 257 nodes) stay in the cache, and below them random
 * tables thin out at once.
 *
 * A node covers the address byte at bit offset `depth` (0, 8, ..., 120). It
 * holds the prefixes of lengths depth+1 .. depth+8 under its path (a node
 * at depth 0 also /0), and a child per value of that byte that leads to
 * longer ones (Eatherton, Varghese and Dittia's Tree Bitmap). A prefix of
 * relative length r (0..8) whose byte is b sits at position
 * (1 << r) | (b >> (8 - r)): the numbering of a complete binary tree of
 * depth 8, in which the 9 positions on the way to one byte value rise with
 * r, so the longest match inside a node is the first set one of those 9,
 * tested from r = 8 down. Which positions and which children exist are two
 * bitmaps (512 and 256 bits) of which the node stores only the nonzero
 * 64-bit words; its arrays hold only what exists, in bit order, and are
 * indexed by counting the set bits below (a popcount). There is no prefix
 * expansion (leaf pushing): each prefix is stored once, and inserting or
 * removing one changes a single node.
 *
 * Sparse parts cost little: a child slot holds either a node or, when only
 * one prefix lies below it, that prefix itself (a leaf, tagged by the low
 * pointer bit), and a node may sit deeper than one byte below its parent
 * (path compression) because every node carries its path (key) and a
 * lookup checks it, as it checks a leaf's whole prefix. The root slot of a
 * family is likewise empty, a leaf or a node of any depth, so a device with
 * one peer holds one prefix object and no node. The writers keep each node
 * at two entries (prefixes plus children) or more, collapsing a node left
 * with one into its slot, so there are fewer nodes than prefixes. At a
 * million random prefixes that is about 64 bytes a prefix, 48 of them the
 * prefix object (key, length, owner, owner-list links, malloc's header);
 * about 78 at 100,000 (the binary trie took 170 to 220).
 *
 * Why not a direct-indexed first level (2^16 or 2^24 entries for IPv4):
 * 256 KiB to 64 MiB (more with the best short prefix per entry, which
 * prefixes of 16 bits or fewer would have to be expanded into) for a device
 * with a handful of prefixes, while the top two levels here are already
 * cache-resident; and it would not help IPv6.
 *
 * Lookup: follow children to the deepest node whose path matches, keeping
 * the nodes passed; a leaf at the end is the longest candidate (its length
 * exceeds every prefix of the nodes above); then test the nodes' positions
 * for the address byte from the deepest node up. The first live match wins.
 *
 * Concurrency: lookups take no locks (epoch readers). Writers are
 * serialized by the caller and never change a published node except by
 * single aligned stores of a child slot or a peer; any other change builds
 * a new node, publishes it with one release store into the slot that held
 * the old one, and retires the old one through the epoch (one batch per
 * change). A reader therefore sees every node whole, before or after.
 *
 * Ownership: each prefix is one object referenced from exactly one place in
 * the trie (a leaf, or a node's owner[] array) and linked into its owner's
 * list (writer only), so a peer's prefixes go without a search. A node's
 * peer[] array repeats its prefixes' owners so that a lookup never touches
 * the objects. An identical prefix changes owner in place.
 *
 * Removal from a big node (a /24 of a gateway's host routes) would copy
 * the whole node every time; instead the prefix is killed in place (owner
 * WG_DP_PEER_NONE, skipped by lookups, revived by a later insert of it)
 * until more than half the node is dead, and then the node is rebuilt
 * without its dead entries. Killing in place needs no memory, so it is also
 * what a removal does when memory runs out: removals never fail.
 */
#include "allowedips.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wg_dp.h"

#define LEAF_TAG ((uintptr_t)1)
#define MAX_PATH 16                     /* nodes on a path: depths 0, 8, ..., 120 */
#define REBUILD_BELOW 16                /* smaller nodes are rebuilt at every removal */
#define DEAD_MAX 255                    /* ndead saturates here */

struct allowedips_prefix {
    uint64_t key[2];                    /* host order, IPv4 in the top of key[0]; masked */
    _Atomic uint32_t peer;              /* WG_DP_PEER_NONE: dead */
    uint8_t cidr;
    uint8_t family;
    struct allowedips_prefix *prev;     /* writer only: the owner's list */
    struct allowedips_prefix *next;
};

struct allowedips_node {
    uint64_t key[2];                    /* the path: address bits above depth, rest zero */
    uint8_t depth;
    uint8_t cmask;                      /* which words of the 256-bit child bitmap are stored */
    uint8_t pmask;                      /* which words of the 512-bit prefix bitmap are stored */
    uint8_t ndead;                      /* writer only: entries killed in place (saturates) */
    uint16_t nchild;
    uint16_t nprefix;
    /* The stored bitmap words (the child bitmap's first), then
     * _Atomic uintptr_t child[nchild]; prefix_t *owner[nprefix]; _Atomic uint32_t peer[nprefix]. */
    uint64_t words[];
};

struct allowedips_garbage {
    struct epoch_head rcu;
    unsigned int n, cap;
    void *ptr[];
};

typedef struct allowedips_node node_t;
typedef struct allowedips_prefix prefix_t;

/* ---- bits and keys -------------------------------------------------------- */

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Set bits in each byte value. */
#define POP2(n) n, n + 1, n + 1, n + 2
#define POP4(n) POP2(n), POP2(n + 1), POP2(n + 1), POP2(n + 2)
#define POP6(n) POP4(n), POP4(n + 1), POP4(n + 1), POP4(n + 2)
static const uint8_t pop8[256] = { POP6(0), POP6(1), POP6(1), POP6(2) };

/*
 * Ranks are popcounts. x86_64's baseline has no popcount instruction (GCC
 * would call libgcc for __builtin_popcountll), so there the lookup is built
 * twice and chosen at run time; `hw` says whether the instruction is there.
 */
#if defined(__POPCNT__) || defined(__aarch64__)
#define HW_POPCOUNT true
#else
#define HW_POPCOUNT false
#endif
#if defined(__x86_64__) && !defined(__POPCNT__)
#define POPCOUNT_DISPATCH 1
#endif

static ALWAYS_INLINE unsigned int popcount64(uint64_t x, bool hw)
{
    if (hw)
        return (unsigned int)__builtin_popcountll(x);
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned int)((x * 0x0101010101010101ull) >> 56);
}

static inline bool test_bit(const uint64_t *bits, unsigned int i)
{
    return (bits[i >> 6] >> (i & 63)) & 1;
}

static inline uint64_t below(unsigned int i)
{
    return (UINT64_C(1) << (i & 63)) - 1;
}

static unsigned int max_bits(uint8_t family)
{
    return family == 4 ? 32 : 128;
}

/* The depth of the node that holds a prefix of this length. */
static inline unsigned int home_depth(unsigned int cidr)
{
    return cidr ? (cidr - 1) & ~7u : 0;
}

static inline unsigned int position(unsigned int r, unsigned int byte)
{
    return (1u << r) | (byte >> (8 - r));
}

/* The address byte at bit offset depth (a multiple of 8). */
static inline unsigned int key_byte(const uint64_t key[2], unsigned int depth)
{
    return (unsigned int)(key[depth >> 6] >> (56 - (depth & 63))) & 0xff;
}

/* The number of leading bits two keys share (128 if equal). */
static inline unsigned int first_diff(const uint64_t a[2], const uint64_t b[2])
{
    uint64_t x = a[0] ^ b[0];

    if (x)
        return (unsigned int)__builtin_clzll(x);
    x = a[1] ^ b[1];
    return x ? 64 + (unsigned int)__builtin_clzll(x) : 128;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void addr_to_key(uint8_t family, const uint8_t *addr, uint64_t key[2])
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

/* Clears every bit from `bits` on. */
static void mask_key(uint64_t key[2], unsigned int bits)
{
    key[0] &= bits == 0 ? 0 : bits >= 64 ? UINT64_MAX : UINT64_MAX << (64 - bits);
    key[1] &= bits <= 64 ? 0 : bits >= 128 ? UINT64_MAX : UINT64_MAX << (128 - bits);
}

static inline bool keys_equal(const uint64_t a[2], const uint64_t b[2])
{
    return a[0] == b[0] && a[1] == b[1];
}

/* ---- entries and nodes ---------------------------------------------------- */

/* malloc, unless the self-tests' allocation budget is spent. */
static void *alloc(struct allowedips *t, size_t size)
{
    if (t->alloc_budget == 0)
        return NULL;
    if (t->alloc_budget > 0)
        t->alloc_budget--;
    return malloc(size);
}

static inline bool is_leaf(uintptr_t e)
{
    return e & LEAF_TAG;
}

static inline prefix_t *leaf_prefix(uintptr_t e)
{
    return (prefix_t *)(e & ~LEAF_TAG);
}

static inline uintptr_t leaf_entry(prefix_t *q)
{
    return (uintptr_t)q | LEAF_TAG;
}

static inline node_t *entry_node(uintptr_t e)
{
    return (node_t *)e;
}

static inline _Atomic uintptr_t *node_children(const node_t *n)
{
    return (_Atomic uintptr_t *)(uintptr_t)(n->words + pop8[n->cmask] + pop8[n->pmask]);
}

static inline prefix_t **node_owners(const node_t *n)
{
    return (prefix_t **)(uintptr_t)(node_children(n) + n->nchild);
}

static inline _Atomic uint32_t *node_peers(const node_t *n)
{
    return (_Atomic uint32_t *)(uintptr_t)(node_owners(n) + n->nprefix);
}

/*
 * Bit i of a bitmap stored as its nonzero words (mask says which): its rank
 * among the set bits, or -1 if it is clear.
 */
static ALWAYS_INLINE int bitmap_rank(unsigned int mask, const uint64_t *words, unsigned int i,
                                     bool hw)
{
    unsigned int w = i >> 6, k, rank;
    uint64_t word;

    if (!((mask >> w) & 1))
        return -1;
    k = pop8[mask & ((1u << w) - 1)];
    word = words[k];
    if (!((word >> (i & 63)) & 1))
        return -1;
    rank = popcount64(word & below(i), hw);
    while (k--)
        rank += popcount64(words[k], hw);
    return (int)rank;
}

static ALWAYS_INLINE int child_index(const node_t *n, unsigned int byte, bool hw)
{
    return bitmap_rank(n->cmask, n->words, byte, hw);
}

static ALWAYS_INLINE int prefix_index(const node_t *n, unsigned int pos, bool hw)
{
    return bitmap_rank(n->pmask, n->words + pop8[n->cmask], pos, hw);
}

/* A node's bitmaps in full, for the writers. */
struct bitmaps {
    uint64_t child[4];
    uint64_t prefix[8];
};

static void node_bitmaps(const node_t *n, struct bitmaps *b)
{
    const uint64_t *w = n->words;

    for (unsigned int i = 0; i < 4; i++)
        b->child[i] = (n->cmask >> i) & 1 ? *w++ : 0;
    for (unsigned int i = 0; i < 8; i++)
        b->prefix[i] = (n->pmask >> i) & 1 ? *w++ : 0;
}

/* Set bits below bit i. */
static unsigned int rank_in(const uint64_t *bits, unsigned int i)
{
    unsigned int rank = popcount64(bits[i >> 6] & below(i), HW_POPCOUNT);

    for (unsigned int w = 0; w < i >> 6; w++)
        rank += popcount64(bits[w], HW_POPCOUNT);
    return rank;
}

static inline uintptr_t load(_Atomic uintptr_t *slot)
{
    return atomic_load_explicit(slot, memory_order_acquire);
}

static inline void publish(_Atomic uintptr_t *slot, uintptr_t e)
{
    atomic_store_explicit(slot, e, memory_order_release);
}

static inline uint32_t peer_of(_Atomic uint32_t *peer)
{
    return atomic_load_explicit(peer, memory_order_relaxed);
}

/* A node with these bitmaps; the caller fills the arrays. */
static node_t *node_alloc(struct allowedips *t, unsigned int depth, const uint64_t key[2],
                          const struct bitmaps *b)
{
    unsigned int nchild = 0, nprefix = 0, nwords = 0;
    uint8_t cmask = 0, pmask = 0;
    node_t *n;

    for (unsigned int i = 0; i < 4; i++) {
        nchild += popcount64(b->child[i], HW_POPCOUNT);
        cmask |= (uint8_t)((b->child[i] != 0) << i);
    }
    for (unsigned int i = 0; i < 8; i++) {
        nprefix += popcount64(b->prefix[i], HW_POPCOUNT);
        pmask |= (uint8_t)((b->prefix[i] != 0) << i);
    }
    nwords = pop8[cmask] + pop8[pmask];
    n = alloc(t, sizeof(*n) + nwords * sizeof(uint64_t) + nchild * sizeof(uintptr_t) +
               nprefix * (sizeof(prefix_t *) + sizeof(uint32_t)));
    if (!n)
        return NULL;
    n->key[0] = key[0];
    n->key[1] = key[1];
    mask_key(n->key, depth);
    n->depth = (uint8_t)depth;
    n->cmask = cmask;
    n->pmask = pmask;
    n->ndead = 0;
    n->nchild = (uint16_t)nchild;
    n->nprefix = (uint16_t)nprefix;
    nwords = 0;
    for (unsigned int i = 0; i < 4; i++)
        if (b->child[i])
            n->words[nwords++] = b->child[i];
    for (unsigned int i = 0; i < 8; i++)
        if (b->prefix[i])
            n->words[nwords++] = b->prefix[i];
    return n;
}

/* Copies `count` items of `size` bytes, inserting `item` at index `at`
 * (delta 1), leaving index `at` out (delta -1), or neither (delta 0). */
static void splice(void *dst, const void *src, size_t count, size_t size, size_t at, int delta,
                   const void *item)
{
    char *d = dst;
    const char *s = src;

    if (delta == 0) {
        memcpy(d, s, count * size);
    } else if (delta > 0) {
        memcpy(d, s, at * size);
        memcpy(d + at * size, item, size);
        memcpy(d + (at + 1) * size, s + at * size, (count - at) * size);
    } else {
        memcpy(d, s, at * size);
        memcpy(d + at * size, s + (at + 1) * size, (count - at - 1) * size);
    }
}

enum edit { ADD_PREFIX, DROP_PREFIX, ADD_CHILD, DROP_CHILD };

/* A copy of n with one prefix (q) or child (e) added at `at`, or dropped. */
static node_t *node_edit(struct allowedips *t, const node_t *n, enum edit op, unsigned int at,
                         prefix_t *q, uintptr_t e)
{
    bool child = op == ADD_CHILD || op == DROP_CHILD;
    int delta = op == ADD_PREFIX || op == ADD_CHILD ? 1 : -1;
    uint32_t peer = q ? peer_of(&q->peer) : WG_DP_PEER_NONE;
    struct bitmaps b;
    uint64_t *bits;
    unsigned int rank;
    node_t *m;

    node_bitmaps(n, &b);
    bits = child ? b.child : b.prefix;
    rank = rank_in(bits, at);
    bits[at >> 6] ^= UINT64_C(1) << (at & 63);
    if (!(m = node_alloc(t, n->depth, n->key, &b)))
        return NULL;
    m->ndead = n->ndead;
    splice(node_children(m), node_children(n), n->nchild, sizeof(uintptr_t), rank,
           child ? delta : 0, &e);
    splice(node_owners(m), node_owners(n), n->nprefix, sizeof(prefix_t *), rank,
           child ? 0 : delta, &q);
    splice(node_peers(m), node_peers(n), n->nprefix, sizeof(uint32_t), rank,
           child ? 0 : delta, &peer);
    return m;
}

/* Where entry e goes in a node at `depth`: a prefix position or a child byte. */
struct placement {
    bool child;
    unsigned int at;
    uintptr_t entry;
};

static struct placement place(unsigned int depth, uintptr_t e)
{
    struct placement p = { true, 0, e };

    if (is_leaf(e)) {
        prefix_t *q = leaf_prefix(e);
        if (home_depth(q->cidr) == depth) {
            p.child = false;
            p.at = position(q->cidr - depth, key_byte(q->key, depth));
            return p;
        }
        p.at = key_byte(q->key, depth);
    } else {
        p.at = key_byte(entry_node(e)->key, depth);
    }
    return p;
}

/* A node at `depth` on `key`'s path holding the two entries. */
static node_t *node_pair(struct allowedips *t, unsigned int depth, const uint64_t key[2],
                         uintptr_t e1, uintptr_t e2)
{
    struct placement p[2] = { place(depth, e1), place(depth, e2) };
    struct bitmaps b;
    unsigned int ci = 0, pi = 0;
    node_t *n;

    memset(&b, 0, sizeof(b));
    if (p[0].at > p[1].at) {
        struct placement tmp = p[0];
        p[0] = p[1];
        p[1] = tmp;
    }
    for (int i = 0; i < 2; i++)
        (p[i].child ? b.child : b.prefix)[p[i].at >> 6] |= UINT64_C(1) << (p[i].at & 63);
    if (!(n = node_alloc(t, depth, key, &b)))
        return NULL;
    for (int i = 0; i < 2; i++) {
        if (p[i].child) {
            atomic_init(&node_children(n)[ci++], p[i].entry);
        } else {
            prefix_t *q = leaf_prefix(p[i].entry);
            node_owners(n)[pi] = q;
            atomic_init(&node_peers(n)[pi++], peer_of(&q->peer));
        }
    }
    return n;
}

static void free_entry(uintptr_t e)
{
    node_t *n;

    if (!e)
        return;
    if (is_leaf(e)) {
        free(leaf_prefix(e));
        return;
    }
    n = entry_node(e);
    /* Depth is bounded by MAX_PATH, so recursion is safe. */
    for (unsigned int i = 0; i < n->nchild; i++)
        free_entry(atomic_load_explicit(&node_children(n)[i], memory_order_relaxed));
    for (unsigned int i = 0; i < n->nprefix; i++)
        free(node_owners(n)[i]);
    free(n);
}

/* ---- deferred freeing ----------------------------------------------------- */

static void garbage_free(struct epoch_head *head)
{
    struct allowedips_garbage *g =
        (struct allowedips_garbage *)((char *)head - offsetof(struct allowedips_garbage, rcu));

    for (unsigned int i = 0; i < g->n; i++)
        free(g->ptr[i]);
    free(g);
}

/* Room for `more` pointers in the current change's batch, taken before the change. */
static int garbage_reserve(struct allowedips *t, unsigned int more)
{
    struct allowedips_garbage *g = t->garbage, *bigger;
    unsigned int used = g ? g->n : 0, cap = 16;

    if (g && g->cap - used >= more)
        return 0;
    while (cap < used + more)
        cap *= 2;
    bigger = alloc(t, sizeof(*bigger) + cap * sizeof(void *));
    if (!bigger)
        return -ENOMEM;
    if (g)
        memcpy(bigger->ptr, g->ptr, used * sizeof(void *));
    free(g);
    bigger->n = used;
    bigger->cap = cap;
    t->garbage = bigger;
    return 0;
}

static void garbage_add(struct allowedips *t, void *p)
{
    t->garbage->ptr[t->garbage->n++] = p;
}

/* Hands what the change unlinked to the epoch. */
static void garbage_flush(struct allowedips *t)
{
    if (t->garbage && t->garbage->n) {
        wg_epoch_retire(t->epoch, &t->garbage->rcu, garbage_free);
        t->garbage = NULL;
    }
}

/* ---- owners --------------------------------------------------------------- */

/*
 * A peer's list keeps its prefixes in the order they were given, as `wg show`
 * lists them (a prefix given again moves to the end, as in the kernel and
 * wireguard-go). by_peer[peer] is the first; the first one's prev is the
 * last, so appending takes no search; the last one's next is NULL.
 */
static void owned_link(struct allowedips *t, prefix_t *q, uint32_t peer)
{
    prefix_t *head = t->by_peer[peer];

    q->next = NULL;
    if (!head) {
        q->prev = q;
        t->by_peer[peer] = q;
    } else {
        q->prev = head->prev;
        head->prev->next = q;
        head->prev = q;
    }
    t->count++;
}

static void owned_unlink(struct allowedips *t, prefix_t *q, uint32_t peer)
{
    prefix_t *head = t->by_peer[peer];

    if (q == head) {
        t->by_peer[peer] = q->next;
        if (q->next)
            q->next->prev = q->prev;
    } else {
        q->prev->next = q->next;
        if (q->next)
            q->next->prev = q->prev;
        else
            head->prev = q->prev;
    }
    q->prev = q->next = NULL;
    t->count--;
}

/* A new owner for q; `copy` is the node's copy of q's owner, if q is in a node. */
static void set_owner(struct allowedips *t, prefix_t *q, _Atomic uint32_t *copy, uint32_t peer)
{
    uint32_t old = peer_of(&q->peer);

    /* Its own owner's too: it moves to the end of the list. */
    if (old != WG_DP_PEER_NONE)
        owned_unlink(t, q, old);
    if (peer != WG_DP_PEER_NONE)
        owned_link(t, q, peer);
    if (old == peer)
        return;
    atomic_store_explicit(&q->peer, peer, memory_order_relaxed);
    if (copy)
        atomic_store_explicit(copy, peer, memory_order_relaxed);
}

static prefix_t *prefix_new(struct allowedips *t, uint8_t family, const uint64_t key[2],
                            unsigned int cidr, uint32_t peer)
{
    prefix_t *q = alloc(t, sizeof(*q));

    if (!q)
        return NULL;
    q->key[0] = key[0];
    q->key[1] = key[1];
    q->cidr = (uint8_t)cidr;
    q->family = family;
    atomic_init(&q->peer, peer);
    q->prev = q->next = NULL;
    return q;
}

/* ---- dead entries --------------------------------------------------------- */

/*
 * A removal from a node of REBUILD_BELOW entries or more kills the prefix in
 * place (its owner becomes WG_DP_PEER_NONE, in the object and the node's
 * peer[] copy) instead of copying the node, until more than half the node's
 * entries would be dead; then the node is rebuilt without them. A dense
 * node (a /24 of host routes) is copied once per half of its entries
 * removed, not at every removal. ndead only decides when: the rebuild looks
 * at the owners themselves. An empty child slot (only left when memory ran
 * out) counts as dead too.
 */
static inline bool dead_prefix(const prefix_t *q)
{
    return peer_of((_Atomic uint32_t *)(uintptr_t)&q->peer) == WG_DP_PEER_NONE;
}

static bool dead_child(uintptr_t e)
{
    return !e || (is_leaf(e) && dead_prefix(leaf_prefix(e)));
}

static void count_dead(node_t *n)
{
    if (n && n->ndead < DEAD_MAX)
        n->ndead++;
}

static void count_revived(node_t *n)
{
    if (n && n->ndead && n->ndead < DEAD_MAX)
        n->ndead--;
}

static bool worth_rebuilding(const node_t *n)
{
    unsigned int entries = n->nchild + n->nprefix, dead = n->ndead + 1u;

    return entries < REBUILD_BELOW || dead >= DEAD_MAX || 2 * dead > entries;
}

/* The live entries of n other than (child, at); `last` gets one of them. */
static unsigned int live_entries(const node_t *n, bool child, unsigned int at, uintptr_t *last)
{
    int skip_child = child ? child_index(n, at, HW_POPCOUNT) : -1;
    int skip_prefix = child ? -1 : prefix_index(n, at, HW_POPCOUNT);
    unsigned int live = 0;

    for (unsigned int i = 0; i < n->nchild; i++) {
        uintptr_t e = atomic_load_explicit(&node_children(n)[i], memory_order_relaxed);
        if ((int)i != skip_child && !dead_child(e))
            live++, *last = e;
    }
    for (unsigned int i = 0; i < n->nprefix; i++)
        if ((int)i != skip_prefix && peer_of(&node_peers(n)[i]) != WG_DP_PEER_NONE)
            live++, *last = leaf_entry(node_owners(n)[i]);
    return live;
}

/* A copy of n with only its live entries other than (child, at). */
static node_t *node_rebuild(struct allowedips *t, const node_t *n, bool child, unsigned int at)
{
    struct bitmaps old, b;
    unsigned int ci = 0, pi = 0, oi = 0;
    node_t *m;

    node_bitmaps(n, &old);
    b = old;
    for (unsigned int w = 0; w < 4; w++)
        for (uint64_t bits = old.child[w]; bits; bits &= bits - 1, oi++) {
            unsigned int byte = w * 64 + (unsigned int)__builtin_ctzll(bits);
            uintptr_t e = atomic_load_explicit(&node_children(n)[oi], memory_order_relaxed);
            if ((child && byte == at) || dead_child(e))
                b.child[w] &= ~(UINT64_C(1) << (byte & 63));
        }
    oi = 0;
    for (unsigned int w = 0; w < 8; w++)
        for (uint64_t bits = old.prefix[w]; bits; bits &= bits - 1, oi++) {
            unsigned int pos = w * 64 + (unsigned int)__builtin_ctzll(bits);
            if ((!child && pos == at) || peer_of(&node_peers(n)[oi]) == WG_DP_PEER_NONE)
                b.prefix[w] &= ~(UINT64_C(1) << (pos & 63));
        }
    if (!(m = node_alloc(t, n->depth, n->key, &b)))
        return NULL;
    oi = 0;
    for (unsigned int w = 0; w < 4; w++)
        for (uint64_t bits = old.child[w]; bits; bits &= bits - 1, oi++)
            if (b.child[w] & bits & -bits)
                atomic_init(&node_children(m)[ci++],
                            atomic_load_explicit(&node_children(n)[oi], memory_order_relaxed));
    oi = 0;
    for (unsigned int w = 0; w < 8; w++)
        for (uint64_t bits = old.prefix[w]; bits; bits &= bits - 1, oi++)
            if (b.prefix[w] & bits & -bits) {
                node_owners(m)[pi] = node_owners(n)[oi];
                atomic_init(&node_peers(m)[pi++], peer_of(&node_peers(n)[oi]));
            }
    return m;
}

/* The prefix objects n holds dead, to be freed with n. */
static void garbage_dead(struct allowedips *t, const node_t *n)
{
    for (unsigned int i = 0; i < n->nchild; i++) {
        uintptr_t e = atomic_load_explicit(&node_children(n)[i], memory_order_relaxed);
        if (e && dead_child(e))
            garbage_add(t, leaf_prefix(e));
    }
    for (unsigned int i = 0; i < n->nprefix; i++)
        if (peer_of(&node_peers(n)[i]) == WG_DP_PEER_NONE)
            garbage_add(t, node_owners(n)[i]);
}

/* ---- the table ------------------------------------------------------------ */

static _Atomic uintptr_t *root_of(struct allowedips *t, uint8_t family)
{
    return family == 4 ? &t->root4 : &t->root6;
}

static bool valid(struct allowedips *t, uint8_t family, unsigned int cidr, uint32_t peer)
{
    return (family == 4 || family == 6) && cidr <= max_bits(family) && peer < t->max_peers;
}

static void detect_popcount(void);

int wg_allowedips_init(struct allowedips *t, uint32_t max_peers, struct epoch *epoch)
{
    atomic_init(&t->root4, 0);
    atomic_init(&t->root6, 0);
    t->by_peer = calloc(max_peers ? max_peers : 1, sizeof(*t->by_peer));
    if (!t->by_peer)
        return -ENOMEM;
    t->max_peers = max_peers;
    t->epoch = epoch;
    t->garbage = NULL;
    t->count = 0;
    t->alloc_budget = -1;
    detect_popcount();
    return 0;
}

void wg_allowedips_free(struct allowedips *t)
{
    free_entry(atomic_load(&t->root4));
    free_entry(atomic_load(&t->root6));
    atomic_store(&t->root4, 0);
    atomic_store(&t->root6, 0);
    free(t->garbage);                   /* empty between changes */
    t->garbage = NULL;
    free(t->by_peer);
    t->by_peer = NULL;
    t->count = 0;
}

/* ---- insert --------------------------------------------------------------- */

/* Publishes a copy of n (in slot) with the new prefix added at `at`. */
static int add_to_node(struct allowedips *t, _Atomic uintptr_t *slot, node_t *n, bool child,
                       unsigned int at, prefix_t *p)
{
    node_t *m;

    if (garbage_reserve(t, 1))
        return -ENOMEM;
    m = child ? node_edit(t, n, ADD_CHILD, at, NULL, leaf_entry(p))
              : node_edit(t, n, ADD_PREFIX, at, p, 0);
    if (!m)
        return -ENOMEM;
    publish(slot, (uintptr_t)m);
    garbage_add(t, n);
    return 0;
}

/*
 * The new prefix p does not belong in or below the entry e in slot (a node
 * whose path it leaves or which is deeper than its home, or a different
 * leaf): a node is made for both, as deep as they share whole bytes, no
 * deeper than either's home, and published in e's place.
 */
static int split(struct allowedips *t, _Atomic uintptr_t *slot, uintptr_t e, prefix_t *p)
{
    const uint64_t *ekey;
    unsigned int elen, ehome, common, depth;
    node_t *m;

    if (is_leaf(e)) {
        ekey = leaf_prefix(e)->key;
        elen = leaf_prefix(e)->cidr;
        ehome = home_depth(elen);
    } else {
        ekey = entry_node(e)->key;
        elen = entry_node(e)->depth;
        ehome = elen - 8;               /* a node in a slot is never at depth 0 here */
    }
    common = first_diff(p->key, ekey);
    common = common < p->cidr ? common : p->cidr;
    common = common < elen ? common : elen;
    depth = common & ~7u;
    depth = depth < home_depth(p->cidr) ? depth : home_depth(p->cidr);
    depth = depth < ehome ? depth : ehome;
    m = node_pair(t, depth, p->key, leaf_entry(p), e);
    if (!m)
        return -ENOMEM;
    publish(slot, (uintptr_t)m);
    return 0;
}

/* A dead leaf in slot gives way to the new prefix p. */
static int replace_dead(struct allowedips *t, _Atomic uintptr_t *slot, uintptr_t e, prefix_t *p,
                        node_t *parent)
{
    if (garbage_reserve(t, 1))
        return -ENOMEM;
    publish(slot, leaf_entry(p));
    garbage_add(t, leaf_prefix(e));
    count_revived(parent);
    return 0;
}

static int insert(struct allowedips *t, uint8_t family, const uint64_t key[2], unsigned int cidr,
                  uint32_t peer)
{
    _Atomic uintptr_t *slot = root_of(t, family);
    unsigned int home = home_depth(cidr), at = 0;
    bool into = false, child = false;   /* the new prefix goes into node e: a child or not */
    node_t *parent = NULL;              /* the node that holds slot */
    prefix_t *p, *q;
    uintptr_t e;
    int ret, i;

    while ((e = load(slot)) && !is_leaf(e)) {
        node_t *n = entry_node(e);
        if (home < n->depth || first_diff(key, n->key) < n->depth)
            break;                      /* not in or below n */
        into = true;
        if (home == n->depth) {
            at = position(cidr - n->depth, key_byte(key, n->depth));
            if ((i = prefix_index(n, at, HW_POPCOUNT)) < 0)
                break;
            q = node_owners(n)[i];
            if (dead_prefix(q))
                count_revived(n);
            set_owner(t, q, &node_peers(n)[i], peer);
            return 0;
        }
        at = key_byte(key, n->depth);
        if ((i = child_index(n, at, HW_POPCOUNT)) < 0) {
            child = true;
            break;
        }
        slot = &node_children(n)[i];
        parent = n;
        into = false;
    }
    q = is_leaf(e) ? leaf_prefix(e) : NULL;
    if (q && q->cidr == cidr && keys_equal(q->key, key)) {
        if (dead_prefix(q))
            count_revived(parent);
        set_owner(t, q, NULL, peer);
        return 0;
    }
    if (!(p = prefix_new(t, family, key, cidr, peer)))
        return -ENOMEM;
    ret = 0;
    if (!e) {
        publish(slot, leaf_entry(p));
        count_revived(parent);          /* an empty slot in a node was a dead entry */
    } else if (into) {
        ret = add_to_node(t, slot, entry_node(e), child, at, p);
    } else if (q && dead_prefix(q)) {
        ret = replace_dead(t, slot, e, p, parent);
    } else {
        ret = split(t, slot, e, p);
    }
    if (ret) {
        free(p);
        return ret;
    }
    owned_link(t, p, peer);
    return 0;
}

int wg_allowedips_insert(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer)
{
    uint64_t key[2];
    int ret;

    if (!valid(t, family, cidr, peer))
        return -EINVAL;
    addr_to_key(family, addr, key);
    mask_key(key, cidr);
    ret = insert(t, family, key, cidr, peer);
    garbage_flush(t);
    return ret;
}

/* ---- remove --------------------------------------------------------------- */

/* The way down to a prefix: node[i] sits in slot[i]; slot[len] holds a leaf. */
struct path {
    _Atomic uintptr_t *slot[MAX_PATH + 1];
    node_t *node[MAX_PATH];
    unsigned int len;
    unsigned int at;                    /* in node[len - 1]: the position or child byte */
    bool leaf;
};

static prefix_t *find(struct allowedips *t, uint8_t family, const uint64_t key[2],
                      unsigned int cidr, struct path *path)
{
    _Atomic uintptr_t *slot = root_of(t, family);
    unsigned int home = home_depth(cidr);

    path->len = 0;
    for (;;) {
        uintptr_t e = load(slot);
        node_t *n = entry_node(e);
        int i;

        path->slot[path->len] = slot;
        if (!e)
            return NULL;
        if (is_leaf(e)) {
            prefix_t *q = leaf_prefix(e);
            path->leaf = true;
            return q->cidr == cidr && keys_equal(q->key, key) ? q : NULL;
        }
        if (home < n->depth || first_diff(key, n->key) < n->depth || path->len == MAX_PATH)
            return NULL;
        path->node[path->len++] = n;
        if (home == n->depth) {
            path->at = position(cidr - n->depth, key_byte(key, n->depth));
            path->leaf = false;
            i = prefix_index(n, path->at, HW_POPCOUNT);
            return i < 0 ? NULL : node_owners(n)[i];
        }
        path->at = key_byte(key, n->depth);
        if ((i = child_index(n, path->at, HW_POPCOUNT)) < 0)
            return NULL;
        slot = &node_children(n)[i];
    }
}

/*
 * Entry (child, at) of path->node[level] goes: the node is rebuilt without it
 * and without its dead entries, gives way to its one live entry left, or
 * leaves its parent if none is. False, and nothing changed, if the node is
 * to keep the entry killed in place instead (see "dead entries").
 */
static bool drop_entry(struct allowedips *t, struct path *path, unsigned int level, bool child,
                       unsigned int at)
{
    node_t *n = path->node[level], *m = NULL;
    _Atomic uintptr_t *slot = path->slot[level];
    uintptr_t last = 0;
    unsigned int live;

    /* Room for n, its dead entries and the prefix the caller drops. */
    if (!worth_rebuilding(n) || garbage_reserve(t, n->nchild + n->nprefix + 1u))
        return false;
    live = live_entries(n, child, at, &last);
    if (live >= 2 && !(m = node_rebuild(t, n, child, at)))
        return false;
    garbage_dead(t, n);
    garbage_add(t, n);
    if (live >= 2) {
        publish(slot, (uintptr_t)m);
    } else if (live == 1) {
        publish(slot, last);
    } else if (level == 0) {
        publish(slot, 0);
    } else if (!drop_entry(t, path, level - 1, true,
                           key_byte(n->key, path->node[level - 1]->depth))) {
        publish(slot, 0);               /* an empty slot: a dead entry of the parent */
        count_dead(path->node[level - 1]);
    }
    return true;
}

static void remove_found(struct allowedips *t, struct path *path, prefix_t *q)
{
    node_t *n = path->len ? path->node[path->len - 1] : NULL;
    bool gone;

    owned_unlink(t, q, peer_of(&q->peer));
    if (n) {
        gone = drop_entry(t, path, path->len - 1, path->leaf, path->at);
    } else if ((gone = garbage_reserve(t, 1) == 0)) {
        publish(path->slot[0], 0);      /* the leaf in the root slot */
    }
    if (gone) {
        garbage_add(t, q);
        return;
    }
    /* Killed in place: skipped by lookups, revived by an insert of it, freed with its node's
     * next rebuild. */
    atomic_store_explicit(&q->peer, WG_DP_PEER_NONE, memory_order_relaxed);
    if (!path->leaf)
        atomic_store_explicit(&node_peers(n)[prefix_index(n, path->at, HW_POPCOUNT)],
                              WG_DP_PEER_NONE, memory_order_relaxed);
    count_dead(n);
}

int wg_allowedips_remove(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         uint8_t cidr, uint32_t peer)
{
    struct path path;
    uint64_t key[2];
    prefix_t *q;

    if (!valid(t, family, cidr, peer))
        return -EINVAL;
    addr_to_key(family, addr, key);
    mask_key(key, cidr);
    q = find(t, family, key, cidr, &path);
    if (!q || peer_of(&q->peer) != peer)
        return -ENOENT;
    remove_found(t, &path, q);
    garbage_flush(t);
    return 0;
}

void wg_allowedips_remove_peer(struct allowedips *t, uint32_t peer)
{
    struct path path;
    prefix_t *q;

    if (peer >= t->max_peers)
        return;
    while ((q = t->by_peer[peer])) {
        if (find(t, q->family, q->key, q->cidr, &path) != q) {
            owned_unlink(t, q, peer);   /* cannot happen: every listed prefix is in a trie */
            continue;
        }
        remove_found(t, &path, q);
        garbage_flush(t);
    }
}

/* ---- listing -------------------------------------------------------------- */

static void key_to_addr(uint8_t family, const uint64_t key[2], uint8_t addr[16])
{
    memset(addr, 0, 16);
    for (unsigned int i = 0; i < (family == 4 ? 4u : 16u); i++)
        addr[i] = (uint8_t)(key[i >> 3] >> (56 - 8 * (i & 7)));
}

int wg_allowedips_owner(struct allowedips *t, uint8_t family, const uint8_t *addr,
                        uint8_t cidr, uint32_t *peer)
{
    struct path path;
    uint64_t key[2];
    prefix_t *q;

    if ((family != 4 && family != 6) || cidr > max_bits(family))
        return -EINVAL;
    addr_to_key(family, addr, key);
    mask_key(key, cidr);
    q = find(t, family, key, cidr, &path);
    if (!q || dead_prefix(q))
        return -ENOENT;
    *peer = peer_of(&q->peer);
    return 0;
}

size_t wg_allowedips_list(struct allowedips *t, uint32_t peer, struct wg_allowed_ip *out,
                          size_t max)
{
    size_t n = 0;

    if (peer >= t->max_peers)
        return 0;
    for (const prefix_t *q = t->by_peer[peer]; q; q = q->next, n++) {
        if (n < max) {
            key_to_addr(q->family, q->key, out[n].addr);
            out[n].family = q->family;
            out[n].cidr = q->cidr;
        }
    }
    return n;
}

size_t wg_allowedips_count(const struct allowedips *t)
{
    return t->count;
}

/* ---- lookup --------------------------------------------------------------- */

static ALWAYS_INLINE uint32_t lookup(struct allowedips *t, uint8_t family, const uint8_t *addr,
                                     bool hw)
{
    const node_t *passed[MAX_PATH];
    unsigned int npassed = 0;
    uint64_t key[2];
    uintptr_t e;

    if (family != 4 && family != 6)
        return WG_DP_PEER_NONE;
    addr_to_key(family, addr, key);
    e = load(root_of(t, family));
    while (e) {
        const node_t *n = entry_node(e);
        int i;

        if (is_leaf(e)) {
            prefix_t *q = leaf_prefix(e);
            if (first_diff(key, q->key) >= q->cidr) {
                uint32_t peer = peer_of(&q->peer);
                if (peer != WG_DP_PEER_NONE)
                    return peer;
            }
            break;
        }
        if (first_diff(key, n->key) < n->depth || npassed == MAX_PATH)
            break;
        passed[npassed++] = n;
        if ((i = child_index(n, key_byte(key, n->depth), hw)) < 0)
            break;
        e = load(&node_children(n)[i]);
    }
    while (npassed--) {
        const node_t *n = passed[npassed];
        unsigned int byte = key_byte(key, n->depth);

        if (!n->nprefix)
            continue;
        for (int r = 8; r >= 0; r--) {
            int i = prefix_index(n, position((unsigned int)r, byte), hw);
            if (i >= 0) {
                uint32_t peer = peer_of(&node_peers(n)[i]);
                if (peer != WG_DP_PEER_NONE)
                    return peer;
            }
        }
    }
    return WG_DP_PEER_NONE;
}

#ifdef POPCOUNT_DISPATCH
static _Atomic int have_popcount;       /* 0: not known yet, 1: no, 2: yes */

__attribute__((target("popcnt")))
static uint32_t lookup_popcount(struct allowedips *t, uint8_t family, const uint8_t *addr)
{
    return lookup(t, family, addr, true);
}

static uint32_t lookup_plain(struct allowedips *t, uint8_t family, const uint8_t *addr)
{
    return lookup(t, family, addr, false);
}

static void detect_popcount(void)
{
    __builtin_cpu_init();
    atomic_store_explicit(&have_popcount, __builtin_cpu_supports("popcnt") ? 2 : 1,
                          memory_order_relaxed);
}

uint32_t wg_allowedips_lookup(struct allowedips *t, uint8_t family, const uint8_t *addr)
{
    if (atomic_load_explicit(&have_popcount, memory_order_relaxed) == 2)
        return lookup_popcount(t, family, addr);
    return lookup_plain(t, family, addr);
}
#else
static void detect_popcount(void)
{
}

uint32_t wg_allowedips_lookup(struct allowedips *t, uint8_t family, const uint8_t *addr)
{
    return lookup(t, family, addr, HW_POPCOUNT);
}
#endif

/* ---- structural check (self-tests) ---------------------------------------- */

struct census {
    size_t nodes, prefixes, live;
};

static int check_entry(struct allowedips *t, uintptr_t e, uint8_t family, const uint64_t path[2],
                       unsigned int fixed, bool root, struct census *c);

/* A node's prefixes, by the set bits of its bitmap only (the fuzzer checks after every
 * operation, and a node has few of its 512 positions). */
static int check_prefixes(struct allowedips *t, const node_t *n, uint8_t family,
                          const struct bitmaps *b, struct census *c, unsigned int *dead)
{
    unsigned int i = 0;
    int ret;

    for (unsigned int w = 0; w < 8; w++) {
        for (uint64_t x = b->prefix[w]; x; x &= x - 1, i++) {
            unsigned int pos = w * 64 + (unsigned int)__builtin_ctzll(x);
            unsigned int r = 31 - (unsigned int)__builtin_clz(pos);
            prefix_t *q = node_owners(n)[i];
            if (prefix_index(n, pos, HW_POPCOUNT) != (int)i ||
                q->cidr != n->depth + r || first_diff(q->key, n->key) < n->depth ||
                position(r, key_byte(q->key, n->depth)) != pos ||
                peer_of(&node_peers(n)[i]) != peer_of(&q->peer))
                return 8;               /* rule 8: a node's prefixes sit where they belong */
            if ((ret = check_entry(t, leaf_entry(q), family, n->key, n->depth, true, c)))
                return ret;
            *dead += dead_prefix(q);
        }
    }
    return 0;
}

/* A node's children, by the set bits of its bitmap only. */
static int check_children(struct allowedips *t, const node_t *n, uint8_t family,
                          const struct bitmaps *b, struct census *c, unsigned int *dead)
{
    unsigned int i = 0;
    int ret;

    for (unsigned int w = 0; w < 4; w++) {
        for (uint64_t x = b->child[w]; x; x &= x - 1, i++) {
            unsigned int byte = w * 64 + (unsigned int)__builtin_ctzll(x);
            uint64_t down[2] = { n->key[0], n->key[1] };
            uintptr_t child;
            if (child_index(n, byte, HW_POPCOUNT) != (int)i)
                return 7;
            down[n->depth >> 6] |= (uint64_t)byte << (56 - (n->depth & 63));
            child = atomic_load_explicit(&node_children(n)[i], memory_order_relaxed);
            if ((ret = check_entry(t, child, family, down, n->depth + 8, false, c)))
                return ret;
            *dead += dead_child(child);
        }
    }
    return 0;
}

/* Checks entry e in a slot that fixes `fixed` bits of `path`; 0 or a rule number. */
static int check_entry(struct allowedips *t, uintptr_t e, uint8_t family, const uint64_t path[2],
                       unsigned int fixed, bool root, struct census *c)
{
    unsigned int bits = max_bits(family);
    uint64_t masked[2];
    struct bitmaps b;
    unsigned int dead;
    node_t *n;
    int ret;

    if (!e)
        return 0;                       /* empty (a child slot: dead) */
    if (is_leaf(e)) {
        prefix_t *q = leaf_prefix(e);
        uint32_t peer = peer_of(&q->peer);
        masked[0] = q->key[0];
        masked[1] = q->key[1];
        mask_key(masked, q->cidr);
        if (q->family != family || q->cidr > bits || !keys_equal(masked, q->key))
            return 2;                   /* rule 2: a prefix is well formed */
        if ((!root && q->cidr <= fixed) || first_diff(q->key, path) < fixed)
            return 3;                   /* rule 3: a leaf is longer than its slot, on its path */
        if (peer != WG_DP_PEER_NONE && peer >= t->max_peers)
            return 4;                   /* rule 4: owners are peers */
        c->prefixes++;
        c->live += peer != WG_DP_PEER_NONE;
        return 0;
    }
    n = entry_node(e);
    c->nodes++;
    masked[0] = n->key[0];
    masked[1] = n->key[1];
    mask_key(masked, n->depth);
    if (n->depth % 8 || n->depth + 8u > bits || n->depth < fixed || !keys_equal(masked, n->key) ||
        first_diff(n->key, path) < fixed)
        return 5;                       /* rule 5: a node is deeper than its slot, on its path */
    if (n->nchild + n->nprefix < 2)
        return 6;                       /* rule 6: a node holds two entries or more */
    node_bitmaps(n, &b);
    dead = 0;
    {
        unsigned int nchild = 0, nprefix = 0;
        for (unsigned int w = 0; w < 4; w++)
            nchild += popcount64(b.child[w], false);
        for (unsigned int w = 0; w < 8; w++)
            nprefix += popcount64(b.prefix[w], false);
        for (unsigned int w = 0; w < pop8[n->cmask] + pop8[n->pmask]; w++)
            if (!n->words[w])
                return 7;               /* rule 7: only nonzero words are stored, */
        if (n->cmask > 15 ||
            nchild != n->nchild || nprefix != n->nprefix || test_bit(b.prefix, 0) ||
            (n->depth && test_bit(b.prefix, 1)))
            return 7;                   /* and the counts agree */
    }
    if ((ret = check_prefixes(t, n, family, &b, c, &dead)) ||
        (ret = check_children(t, n, family, &b, c, &dead)))
        return ret;
    if (n->ndead != dead && n->ndead != DEAD_MAX)
        return 1;                       /* rule 1: a node counts its dead entries */
    return 0;
}

int wg_allowedips_check(struct allowedips *t, size_t *nodes, size_t *prefixes)
{
    static const uint64_t zero[2] = { 0, 0 };
    struct census c = { 0, 0, 0 };
    size_t listed = 0;
    int ret;

    if ((ret = check_entry(t, atomic_load(&t->root4), 4, zero, 0, true, &c)) ||
        (ret = check_entry(t, atomic_load(&t->root6), 6, zero, 0, true, &c)))
        return ret;
    for (uint32_t peer = 0; peer < t->max_peers; peer++) {
        const prefix_t *head = t->by_peer[peer], *prev = NULL;
        for (const prefix_t *q = head; q; prev = q, q = q->next, listed++)
            if ((q != head && q->prev != prev) ||
                peer_of((_Atomic uint32_t *)(uintptr_t)&q->peer) != peer)
                return 9;               /* rule 9: the owner lists hold what peers own, */
        if (head && head->prev != prev)
            return 9;                   /* the first names the last */
    }
    if (listed != c.live || listed != t->count)
        return 9;                       /* and count it */
    if (nodes)
        *nodes = c.nodes;
    if (prefixes)
        *prefixes = c.prefixes;
    return 0;
}
