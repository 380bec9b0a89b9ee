/*
 * allowedips_fuzz.c - libFuzzer driver for cryptokey routing (allowedips.h),
 * against the plainest possible table: a list of (family, prefix, length,
 * peer), where a lookup takes the longest prefix containing the address.
 * It relies only on the header's contract, not on how the tries are built.
 *
 * Input: a sequence of operations, one byte each and its operands: insert,
 * insert with memory running out after a few allocations (-ENOMEM and no
 * change, or done), remove (by the right or a wrong peer), remove every
 * prefix of a peer, lookups, and calls with a bad family, length or peer (-EINVAL). Addresses
 * are fresh bytes or taken from an earlier prefix with a bit flipped, so
 * that prefixes nest, touch and replace each other. After each change the
 * address it named and its neighbours are looked up; at the end every
 * prefix's first and last address and the addresses just outside it, and
 * then, after removing every peer, the table must be empty. After every
 * operation the tries must keep their structural rules (wg_allowedips_check). Retired nodes
 * are freed at once (no reader runs), so ASan sees any node still linked
 * after it was retired.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "../allowedips.h"
#include "../epoch.h"
#include "../wg_dp.h"
#include "fuzz.h"

#define PEERS 8
#define MAX_OPS 256
#define MAX_PREFIXES MAX_OPS

struct prefix {
    uint8_t family, cidr;
    uint8_t addr[16];                   /* host bits cleared */
    uint32_t peer;
};

static struct prefix model[MAX_PREFIXES];
static unsigned int nmodel;
static struct prefix history[MAX_OPS];  /* every prefix named so far, for reuse */
static unsigned int nhistory;

static unsigned int addr_len(uint8_t family)
{
    return family == 4 ? 4 : 16;
}

static unsigned int max_cidr(uint8_t family)
{
    return family == 4 ? 32 : 128;
}

static void clear_host_bits(uint8_t *addr, uint8_t family, unsigned int cidr)
{
    for (unsigned int i = 0; i < addr_len(family); i++) {
        unsigned int keep = cidr >= 8 * (i + 1) ? 8 : cidr > 8 * i ? cidr - 8 * i : 0;
        addr[i] &= (uint8_t)(0xff00u >> keep);
    }
}

static bool in_prefix(const struct prefix *p, uint8_t family, const uint8_t *addr)
{
    uint8_t masked[16];

    if (p->family != family)
        return false;
    memcpy(masked, addr, addr_len(family));
    clear_host_bits(masked, family, p->cidr);
    return memcmp(masked, p->addr, addr_len(family)) == 0;
}

static struct prefix *model_find(uint8_t family, const uint8_t *addr, uint8_t cidr)
{
    for (unsigned int i = 0; i < nmodel; i++)
        if (model[i].family == family && model[i].cidr == cidr &&
            memcmp(model[i].addr, addr, addr_len(family)) == 0)
            return &model[i];
    return NULL;
}

static uint32_t model_lookup(uint8_t family, const uint8_t *addr)
{
    int best = -1;

    for (unsigned int i = 0; i < nmodel; i++)
        if (in_prefix(&model[i], family, addr) && (best < 0 || model[i].cidr > model[best].cidr))
            best = (int)i;
    return best < 0 ? WG_DP_PEER_NONE : model[best].peer;
}

static void model_drop(unsigned int i)
{
    model[i] = model[--nmodel];
}

static void check_lookup(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         const char *why)
{
    uint32_t got = wg_allowedips_lookup(t, family, addr), want = model_lookup(family, addr);

    if (got != want) {
        fprintf(stderr, "lookup of IPv%u ", family);
        for (unsigned int i = 0; i < addr_len(family); i++)
            fprintf(stderr, "%02x", addr[i]);
        fprintf(stderr, " (%s): got %u, want %u; %u prefixes:\n", why, got, want, nmodel);
        for (unsigned int i = 0; i < nmodel; i++) {
            fprintf(stderr, "  v%u ", model[i].family);
            for (unsigned int k = 0; k < addr_len(model[i].family); k++)
                fprintf(stderr, "%02x", model[i].addr[k]);
            fprintf(stderr, "/%u -> %u\n", model[i].cidr, model[i].peer);
        }
        FUZZ_CHECK(got == want, "allowed-IPs lookup differs from the reference");
    }
}

static void flip_bit(uint8_t *addr, unsigned int bit)
{
    addr[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
}

/* The address an operation names: fresh bytes, or an earlier prefix's with
 * one bit flipped (or none). */
static void pick_address(struct fuzz_input *in, uint8_t family, uint8_t *addr)
{
    uint8_t how = fz_u8(in);

    memset(addr, 0, 16);
    if (how < 128 && nhistory) {
        const struct prefix *h = &history[fz_u8(in) % nhistory];
        memcpy(addr, h->addr, 16);
        if (h->family != family)
            memset(addr, 0, 16);
        if (how & 1)
            flip_bit(addr, fz_u8(in) % max_cidr(family));
    } else {
        fz_bytes(in, addr, addr_len(family));
    }
}

/* The address and its neighbours: the bits around a prefix length flipped. */
static void check_around(struct allowedips *t, uint8_t family, const uint8_t *addr,
                         unsigned int cidr)
{
    uint8_t probe[16];

    check_lookup(t, family, addr, "the address named");
    for (int d = -1; d <= 1; d++) {
        int bit = (int)cidr + d;
        if (bit < 0 || bit >= (int)max_cidr(family))
            continue;
        memcpy(probe, addr, 16);
        flip_bit(probe, (unsigned int)bit);
        check_lookup(t, family, probe, "a neighbour");
    }
}

/* Every prefix's first and last address, and the addresses just outside. */
static void check_all(struct allowedips *t)
{
    for (unsigned int i = 0; i < nmodel; i++) {
        const struct prefix *p = &model[i];
        uint8_t last[16];

        memcpy(last, p->addr, 16);
        for (unsigned int b = p->cidr; b < max_cidr(p->family); b++)
            flip_bit(last, b);
        check_around(t, p->family, p->addr, p->cidr);
        check_lookup(t, p->family, last, "a prefix's last address");
        if (p->cidr > 0) {
            flip_bit(last, p->cidr - 1);
            check_lookup(t, p->family, last, "past a prefix's end");
        }
    }
}

static void step(struct fuzz_input *in, struct allowedips *t, struct epoch *e)
{
    uint8_t op = fz_u8(in), family = op & 0x80 ? 6 : 4, cidr, addr[16];
    uint32_t peer;
    struct prefix *p;
    int got, want;

    switch (op % 8) {
    case 7:                             /* an insert that runs out of memory part way */
        t->alloc_budget = fz_u8(in) % 4;
        pick_address(in, family, addr);
        cidr = (uint8_t)(fz_u8(in) % (max_cidr(family) + 1));
        peer = fz_u8(in) % PEERS;
        got = wg_allowedips_insert(t, family, addr, cidr, peer);
        t->alloc_budget = -1;
        FUZZ_CHECK(got == 0 || got == -ENOMEM, "insert short of memory: %d", got);
        clear_host_bits(addr, family, cidr);
        if (got == 0) {
            if ((p = model_find(family, addr, cidr)))
                p->peer = peer;
            else
                model[nmodel++] = (struct prefix){ family, cidr, { 0 }, peer };
            if (!p)
                memcpy(model[nmodel - 1].addr, addr, 16);
        }
        history[nhistory++] = (struct prefix){ family, cidr, { 0 }, peer };
        memcpy(history[nhistory - 1].addr, addr, 16);
        check_around(t, family, addr, cidr);    /* -ENOMEM: no change at all */
        break;
    case 0:
    case 1:                             /* insert */
        pick_address(in, family, addr);
        cidr = (uint8_t)(fz_u8(in) % (max_cidr(family) + 1));
        peer = fz_u8(in) % PEERS;
        got = wg_allowedips_insert(t, family, addr, cidr, peer);
        FUZZ_CHECK(got == 0, "insert: %d", got);
        clear_host_bits(addr, family, cidr);
        if ((p = model_find(family, addr, cidr)))
            p->peer = peer;
        else
            model[nmodel++] = (struct prefix){ family, cidr, { 0 }, peer };
        if (!p)
            memcpy(model[nmodel - 1].addr, addr, 16);
        history[nhistory++] = (struct prefix){ family, cidr, { 0 }, peer };
        memcpy(history[nhistory - 1].addr, addr, 16);
        check_around(t, family, addr, cidr);
        break;
    case 2:                             /* remove, by its owner or not */
        pick_address(in, family, addr);
        cidr = (uint8_t)(fz_u8(in) % (max_cidr(family) + 1));
        peer = fz_u8(in) % PEERS;
        got = wg_allowedips_remove(t, family, addr, cidr, peer);
        clear_host_bits(addr, family, cidr);
        p = model_find(family, addr, cidr);
        want = p && p->peer == peer ? 0 : -ENOENT;
        FUZZ_CHECK(got == want, "remove /%u by %u: got %d, want %d", cidr, peer, got, want);
        if (want == 0)
            model_drop((unsigned int)(p - model));
        check_around(t, family, addr, cidr);
        break;
    case 3:                             /* every prefix of a peer */
        peer = fz_u8(in) % PEERS;
        wg_allowedips_remove_peer(t, peer);
        for (unsigned int i = nmodel; i-- > 0;)
            if (model[i].peer == peer)
                model_drop(i);
        break;
    case 4:
    case 5:                             /* lookups */
        pick_address(in, family, addr);
        check_around(t, family, addr, fz_u8(in) % max_cidr(family));
        break;
    default: {                          /* what the contract refuses */
        uint8_t what = fz_u8(in) % 4, bad_family = family, bad_cidr = 0;
        uint32_t bad_peer = 0;
        pick_address(in, family, addr);
        if (what == 0)
            bad_family = fz_u8(in);
        else if (what == 1)
            bad_cidr = (uint8_t)(max_cidr(family) + 1 + fz_u8(in) % (255 - max_cidr(family)));
        else
            bad_peer = PEERS + fz_u32(in) % (UINT32_MAX - PEERS);
        if (what == 0 && (bad_family == 4 || bad_family == 6))
            bad_family = 5;
        got = what == 3 ? wg_allowedips_remove(t, bad_family, addr, bad_cidr, bad_peer)
                        : wg_allowedips_insert(t, bad_family, addr, bad_cidr, bad_peer);
        FUZZ_CHECK(got == -EINVAL, "family %u, /%u, peer %u: got %d", bad_family, bad_cidr,
                   bad_peer, got);
        if (what != 0)
            check_around(t, family, addr, 0);
        break;
    }
    }
    /* The tries' own structural rules and owner lists (allowedips.c). */
    got = wg_allowedips_check(t, NULL, NULL);
    FUZZ_CHECK(got == 0, "structural rule %d broken", got);
    /* No reader runs: what a change retired can go now, so a node still
     * linked after retiring is a use after free. */
    wg_epoch_reclaim(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    struct allowedips t;
    struct epoch e;
    int ret;

    nmodel = nhistory = 0;
    wg_epoch_init(&e);
    ret = wg_allowedips_init(&t, PEERS, &e);
    FUZZ_CHECK(ret == 0, "init: %d", ret);
    for (unsigned int ops = 0; fz_more(&in) && ops < MAX_OPS; ops++)
        step(&in, &t, &e);
    check_all(&t);
    for (uint32_t peer = 0; peer < PEERS; peer++)
        wg_allowedips_remove_peer(&t, peer);
    nmodel = 0;
    wg_epoch_reclaim(&e);
    for (unsigned int i = 0; i < nhistory; i++)
        check_lookup(&t, history[i].family, history[i].addr, "after removing every peer");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&e);
    return 0;
}
