/*
 * route.c - the MTUs of the routes through our interface (route.h).
 *
 * At most WG_DP_ROUTE_MTU_MAX prefixes, searched linearly (two masked
 * 64-bit compares each): a lookup happens only for a packet whose padding
 * would reach past the table's smallest MTU.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

static void route_mtus_free_rcu(struct epoch_head *head)
{
    free((struct route_mtus *)((char *)head - offsetof(struct route_mtus, rcu)));
}

void wg_route_mtus_free(struct route_mtus *t)
{
    free(t);
}

static int entry_from(struct route_mtu_entry *e, const struct wg_route_mtu *r)
{
    unsigned int bytes = r->family == 4 ? 4 : 16;
    uint8_t addr[16] = { 0 }, mask[16] = { 0 };

    if ((r->family != 4 && r->family != 6) || r->cidr > bytes * 8 || !r->mtu)
        return -EINVAL;
    for (unsigned int i = 0; i < bytes; i++) {
        unsigned int bits = r->cidr > i * 8 ? r->cidr - i * 8 : 0;
        mask[i] = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);
        addr[i] = r->addr[i] & mask[i];
    }
    memset(e, 0, sizeof(*e));
    memcpy(e->addr, addr, sizeof(addr));
    memcpy(e->mask, mask, sizeof(mask));
    e->family = r->family;
    e->cidr = r->cidr;
    e->mtu = r->mtu;
    return 0;
}

int wg_route_mtus_set(_Atomic(struct route_mtus *) *slot, struct epoch *epoch,
                      const struct wg_route_mtu *routes, uint32_t n, uint32_t overflow)
{
    struct route_mtus *t = NULL, *old;

    if (n > WG_DP_ROUTE_MTU_MAX || (n && !routes))
        return -EINVAL;
    if (n || overflow) {
        t = calloc(1, sizeof(*t) + n * sizeof(t->e[0]));
        if (!t)
            return -ENOMEM;
        t->n = n;
        t->overflow = overflow;
        t->least = overflow ? overflow : UINT32_MAX;
        for (uint32_t i = 0; i < n; i++) {
            if (entry_from(&t->e[i], &routes[i])) {
                free(t);
                return -EINVAL;
            }
            if (t->e[i].mtu < t->least)
                t->least = t->e[i].mtu;
        }
    }
    old = atomic_exchange_explicit(slot, t, memory_order_acq_rel);
    if (old)
        wg_epoch_retire(epoch, &old->rcu, route_mtus_free_rcu);
    return 0;
}

uint32_t wg_route_mtu_lookup(const struct route_mtus *t, uint8_t family, const uint8_t *dst)
{
    const struct route_mtu_entry *best = NULL;
    uint64_t d[2] = { 0, 0 };

    memcpy(d, dst, family == 4 ? 4 : 16);
    for (uint32_t i = 0; i < t->n; i++) {
        const struct route_mtu_entry *e = &t->e[i];
        if (e->family != family || (d[0] & e->mask[0]) != e->addr[0] ||
            (d[1] & e->mask[1]) != e->addr[1])
            continue;
        /* The longest prefix; of equal ones (from two tables), the smaller MTU. */
        if (!best || e->cidr > best->cidr || (e->cidr == best->cidr && e->mtu < best->mtu))
            best = e;
    }
    if (best && (!t->overflow || best->mtu < t->overflow))
        return best->mtu;
    return t->overflow;
}
