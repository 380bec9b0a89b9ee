/*
 * api.c - the boundary Python calls (wg_dp.h), as the kernel keeps its
 * netlink.c: each wg_dp_* function checks its arguments, takes the control
 * mutex, finds the peer by its slot and calls the internals of one file.
 * Nothing below this file takes the control mutex, and nothing calls back up.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include <errno.h>
#include <string.h>

#include "device.h"
#include "keypair.h"
#include "peer.h"
#include "queueing.h"

/* The counters are copied out as an array: enum dp_stat follows the fields. */
_Static_assert(offsetof(struct wg_dp_stats, reserved) == STAT_COUNT * sizeof(uint64_t),
               "enum dp_stat and struct wg_dp_stats disagree");
_Static_assert(sizeof(struct wg_dp_stats) == 37 * sizeof(uint64_t),
               "struct wg_dp_stats keeps its size: new counters take from reserved[]");

/* The control mutex held: the peer in slot, or NULL. */
static struct peer *lock_peer(struct wg_dp *dp, uint32_t slot)
{
    wg_device_lock(dp);
    return wg_device_peer(dp, slot);
}

/* The control mutex released: ret, or -ENOENT if there was no peer. */
static int unlock_peer(struct wg_dp *dp, const struct peer *peer, int ret)
{
    wg_device_unlock(dp);
    return peer ? ret : -ENOENT;
}

/* ---- lifetime ------------------------------------------------------------ */

int wg_dp_create(const struct wg_dp_settings *settings, struct wg_dp **out)
{
    return wg_device_create(settings, out);
}

void wg_dp_destroy(struct wg_dp *dp)
{
    if (!dp)
        return;
    wg_dp_stop(dp);
    wg_device_free(dp);
}

int wg_dp_start(struct wg_dp *dp)
{
    int ret;

    wg_device_lock(dp);
    ret = wg_device_start(dp);
    wg_device_unlock(dp);
    return ret;
}

int wg_dp_stop(struct wg_dp *dp)
{
    wg_device_lock(dp);
    wg_device_stop(dp);
    wg_device_unlock(dp);
    return 0;
}

int wg_dp_event_fd(struct wg_dp *dp)
{
    return dp->events.fd;
}

int wg_dp_set_udp(struct wg_dp *dp, int udp4_fd, int udp6_fd)
{
    wg_device_lock(dp);
    wg_device_set_udp(dp, udp4_fd, udp6_fd);
    wg_device_unlock(dp);
    return 0;
}

int wg_dp_set_mtu(struct wg_dp *dp, uint32_t mtu)
{
    atomic_store(&dp->mtu, mtu);
    return 0;
}

int wg_dp_set_route_mtus(struct wg_dp *dp, const struct wg_route_mtu *routes, uint32_t n,
                         uint32_t overflow_mtu)
{
    int ret;

    wg_device_lock(dp);
    ret = wg_route_mtus_set(&dp->route_mtus, &dp->epoch, routes, n, overflow_mtu);
    wg_device_unlock(dp);
    return ret;
}

int wg_dp_offloads(struct wg_dp *dp)
{
    uint32_t fd_bits = 0;

    /* A socket that is absent does not count against the other. */
    if (atomic_load(&dp->udp4_fd) >= 0)
        fd_bits = atomic_load(&dp->udp4_offloads);
    if (atomic_load(&dp->udp6_fd) >= 0)
        fd_bits = atomic_load(&dp->udp4_fd) >= 0 ? fd_bits & atomic_load(&dp->udp6_offloads)
                                                  : atomic_load(&dp->udp6_offloads);
    return (int)(fd_bits | atomic_load(&dp->tun_offloads));
}

int wg_dp_crypto_threads(struct wg_dp *dp)
{
    return (int)dp->crypto_threads;
}

/* ---- peers --------------------------------------------------------------- */

int wg_dp_peer_add(struct wg_dp *dp, uint32_t slot)
{
    int ret;

    if (slot >= dp->max_peers)
        return -EINVAL;
    wg_device_lock(dp);
    ret = wg_device_peer(dp, slot) ? -EEXIST : wg_peer_create(dp, slot);
    wg_device_unlock(dp);
    return ret;
}

int wg_dp_peer_remove(struct wg_dp *dp, uint32_t slot)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_peer_remove(dp, peer);
    return unlock_peer(dp, peer, 0);
}

int wg_dp_peer_set_endpoint(struct wg_dp *dp, uint32_t slot, const struct wg_endpoint *ep)
{
    struct peer *peer;

    if (ep->family != 0 && ep->family != 4 && ep->family != 6)
        return -EAFNOSUPPORT;
    if ((peer = lock_peer(dp, slot)))
        wg_peer_set_endpoint(peer, ep);
    return unlock_peer(dp, peer, 0);
}

int wg_dp_peer_clear_src(struct wg_dp *dp, uint32_t slot)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_peer_forget_src(peer);
    return unlock_peer(dp, peer, 0);
}

int wg_dp_peer_handshake_received(struct wg_dp *dp, uint32_t slot, uint32_t bytes, uint64_t now)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_peer_received(dp, peer, bytes, false, now);
    return unlock_peer(dp, peer, 0);
}

int wg_dp_peer_info(struct wg_dp *dp, uint32_t slot, struct wg_peer_info *out)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_peer_info(peer, out);
    return unlock_peer(dp, peer, 0);
}

int wg_dp_peers_transfer(struct wg_dp *dp, const uint32_t *slots, uint32_t n,
                         struct wg_peer_transfer *out)
{
    wg_device_lock(dp);
    for (uint32_t i = 0; i < n; i++) {
        struct peer *peer = wg_device_peer(dp, slots[i]);
        memset(&out[i], 0, sizeof(out[i]));
        if (peer)
            wg_peer_transfer(peer, &out[i]);
        else
            out[i].family = 255;
    }
    wg_device_unlock(dp);
    return (int)n;
}

int wg_dp_active_peers(struct wg_dp *dp, uint32_t *peers, uint32_t max)
{
    return (int)wg_active_take(dp, peers, max);
}

/* ---- cryptokey routing --------------------------------------------------- */

int wg_dp_allowedips_insert(struct wg_dp *dp, uint32_t slot, uint8_t family,
                            const uint8_t *addr, uint8_t cidr)
{
    struct peer *peer = lock_peer(dp, slot);
    int ret = peer ? wg_allowedips_insert(&dp->allowedips, family, addr, cidr, slot) : 0;

    return unlock_peer(dp, peer, ret);
}

int wg_dp_allowedips_remove(struct wg_dp *dp, uint32_t slot, uint8_t family,
                            const uint8_t *addr, uint8_t cidr)
{
    int ret;

    wg_device_lock(dp);
    ret = wg_allowedips_remove(&dp->allowedips, family, addr, cidr, slot);
    wg_device_unlock(dp);
    return ret;
}

int wg_dp_allowedips_remove_peer(struct wg_dp *dp, uint32_t slot)
{
    if (slot >= dp->max_peers)
        return -EINVAL;
    wg_device_lock(dp);
    wg_allowedips_remove_peer(&dp->allowedips, slot);
    wg_device_unlock(dp);
    return 0;
}

uint32_t wg_dp_allowedips_lookup(struct wg_dp *dp, uint8_t family, const uint8_t *addr)
{
    uint32_t slot;

    wg_device_lock(dp);
    slot = wg_allowedips_lookup(&dp->allowedips, family, addr);
    wg_device_unlock(dp);
    return slot;
}

int wg_dp_allowedips_owner(struct wg_dp *dp, uint8_t family, const uint8_t *addr,
                           uint8_t cidr, uint32_t *peer)
{
    int ret;

    wg_device_lock(dp);
    ret = wg_allowedips_owner(&dp->allowedips, family, addr, cidr, peer);
    wg_device_unlock(dp);
    return ret;
}

int wg_dp_allowedips_list(struct wg_dp *dp, const uint32_t *slots, uint32_t n,
                          uint32_t *counts, struct wg_allowed_ip *out, uint32_t max)
{
    size_t total = 0;

    wg_device_lock(dp);
    for (uint32_t i = 0; i < n; i++) {
        size_t room = total < max ? max - total : 0;
        size_t owned = wg_allowedips_list(&dp->allowedips, slots[i], room ? out + total : NULL,
                                          room);
        counts[i] = (uint32_t)owned;
        total += owned;
    }
    wg_device_unlock(dp);
    return total > INT32_MAX ? -EOVERFLOW : (int)total;
}

int wg_dp_allowedips_count(struct wg_dp *dp)
{
    size_t count;

    wg_device_lock(dp);
    count = wg_allowedips_count(&dp->allowedips);
    wg_device_unlock(dp);
    return count > INT32_MAX ? -EOVERFLOW : (int)count;
}

/* ---- the handshake front line ------------------------------------------- */

int wg_dp_set_public_key(struct wg_dp *dp, const uint8_t *public_key)
{
    wg_cookie_checker_set_key(&dp->cookies, public_key);
    return 0;
}

/* ---- keypairs ------------------------------------------------------------ */

int wg_dp_index_new(struct wg_dp *dp, uint32_t slot, uint32_t *index)
{
    struct peer *peer = lock_peer(dp, slot);
    int ret = peer ? wg_keypair_index_new(dp, peer, index) : 0;

    return unlock_peer(dp, peer, ret);
}

int wg_dp_keypair_install(struct wg_dp *dp, uint32_t slot, const struct wg_keypair_params *p)
{
    struct peer *peer = lock_peer(dp, slot);
    int ret = peer ? wg_keypair_install(dp, peer, p) : 0;

    return unlock_peer(dp, peer, ret);
}

int wg_dp_keypairs_clear(struct wg_dp *dp, uint32_t slot)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_keypairs_clear(dp, peer);
    return unlock_peer(dp, peer, 0);
}

int wg_dp_staged_clear(struct wg_dp *dp, uint32_t slot)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_peer_clear_staged(dp, peer);
    return unlock_peer(dp, peer, 0);
}

/* ---- packets sent by Python ---------------------------------------------- */

int wg_dp_send_to_peer(struct wg_dp *dp, uint32_t slot, const uint8_t *msg, size_t len)
{
    struct peer *peer = lock_peer(dp, slot);
    int ret = peer ? wg_send_to_peer(dp, peer, msg, len) : 0;

    return unlock_peer(dp, peer, ret);
}

int wg_dp_send_to(struct wg_dp *dp, const struct wg_endpoint *ep, const uint8_t *msg, size_t len)
{
    int ret;

    wg_device_lock(dp);
    ret = wg_send_to(dp, ep, msg, len);
    wg_device_unlock(dp);
    return ret;
}

int wg_dp_handshakes_answer(struct wg_dp *dp, struct wg_handshake_answer *answers, uint32_t n,
                            uint64_t now)
{
    int sent;

    wg_device_lock(dp);
    sent = wg_send_answers(dp, answers, n, now);
    wg_device_unlock(dp);
    return sent;
}

int wg_dp_send_keepalive(struct wg_dp *dp, uint32_t slot)
{
    struct peer *peer = lock_peer(dp, slot);

    if (peer)
        wg_send_keepalive(dp, peer);
    return unlock_peer(dp, peer, 0);
}

/* ---- events and counters ------------------------------------------------- */

int wg_dp_events_read(struct wg_dp *dp, struct wg_event *out, uint32_t max)
{
    return (int)wg_events_pop(&dp->events, out, max > (1u << 20) ? (1u << 20) : max);
}

int wg_dp_stats_get(struct wg_dp *dp, struct wg_dp_stats *out)
{
    uint64_t *fields = (uint64_t *)out;

    memset(out, 0, sizeof(*out));
    for (unsigned int i = 0; i < STAT_COUNT; i++)
        fields[i] = atomic_load_explicit(&dp->stats[i], memory_order_relaxed);
    out->event_ring_used = wg_events_used(&dp->events);
    out->handshake_under_load = wg_device_under_load(dp, now_ns());
    return 0;
}
