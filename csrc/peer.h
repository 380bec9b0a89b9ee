/*
 * peer.h - one peer's data plane state: endpoint, keypair slots, staged
 * packets, counters and the timestamps Python's timers read.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "epoch.h"
#include "wg_dp.h"

struct keypair;

/* A packet waiting for a keypair, with the room sealing needs around it. */
struct staged_packet {
    struct staged_packet *next;
    uint32_t len;
    uint8_t buf[];                      /* DP_HEADROOM + len + DP_TAILROOM */
};

/* Laid out without holes (a gateway holds a million): 328 bytes on x86_64. */
struct peer {
    struct epoch_head rcu;
    pthread_mutex_t lock;               /* endpoint, keypair slots */
    pthread_mutex_t tx_lock;            /* send order, staged queue */
    struct wg_endpoint endpoint;        /* under lock */
    uint32_t slot;
    _Atomic(struct keypair *) previous, current, next;  /* written under lock */
    struct index_entry handshake;       /* control calls: the pending handshake's index, */

    struct staged_packet *staged_head;  /* under tx_lock */
    struct staged_packet **staged_tail;
    _Atomic uint32_t staged_count;
    bool handshake_asked;               /* under tx_lock: NEED_HANDSHAKE sent this episode */
    bool removed;                       /* under tx_lock: stage nothing more */
    bool handshake_indexed;             /* control calls: `handshake` is in the index table */
    uint64_t gso_retry_ns;              /* under tx_lock: no UDP_SEGMENT before this */

    _Atomic uint64_t rx_bytes, tx_bytes;
    _Atomic uint64_t last_tx_auth_ns, last_rx_auth_ns;
    _Atomic uint64_t first_tx_data_since_rx_ns, first_rx_data_since_tx_ns;
    _Atomic uint64_t last_tx_data_ns, last_rx_data_ns;
    _Atomic uint64_t rekey_send_event_ns, rekey_recv_event_ns;

    uint64_t rx_batch;                  /* RX thread only: batch scratch */
    uint64_t tx_batch;                  /* TX thread only */
    unsigned int rx_last;               /* RX thread only */
    unsigned int tx_group;              /* TX thread only */
};

/* Control calls (api.c), under the control mutex. The new peer goes into
 * its slot; removal empties the slot and drops the peer's allowed IPs,
 * keypairs and staged packets, and frees it once no thread can hold it. */
int wg_peer_create(struct wg_dp *dp, uint32_t slot);
void wg_peer_remove(struct wg_dp *dp, struct peer *peer);
void wg_peer_set_endpoint(struct peer *peer, const struct wg_endpoint *ep);
void wg_peer_info(struct peer *peer, struct wg_peer_info *out);
void wg_peer_transfer(struct peer *peer, struct wg_peer_transfer *out);
void wg_peer_clear_staged(struct wg_dp *dp, struct peer *peer);

void wg_peer_get_endpoint(struct peer *peer, struct wg_endpoint *out);
/* Roaming: true if the remote address changed (not just our source). */
bool wg_peer_update_endpoint(struct peer *peer, const struct wg_endpoint *ep);
void wg_peer_forget_src(struct peer *peer);
/* Raises an event of `type` unless one was raised less than rekey_timeout ago. */
void wg_peer_rekey_event(struct wg_dp *dp, struct peer *peer, uint32_t type,
                         _Atomic uint64_t *last, uint64_t now);

/* Timestamp bookkeeping shared by the send and receive paths; each marks the
 * peer active, so that the timer tick reads its facts again. */
void wg_peer_mark_active(struct wg_dp *dp, struct peer *peer);
void wg_peer_sent(struct wg_dp *dp, struct peer *peer, uint64_t bytes, bool data, uint64_t now);
void wg_peer_received(struct wg_dp *dp, struct peer *peer, uint64_t bytes, bool data,
                      uint64_t now);

/* The staged queue; caller holds peer->tx_lock. Staging drops the oldest
 * packet past MAX_STAGED_PACKETS, and the new one past the device's bounds.
 * An unstaged packet is the caller's to free once it is sent. */
void wg_peer_stage(struct wg_dp *dp, struct peer *peer, const uint8_t *data, uint32_t len);
struct staged_packet *wg_peer_unstage(struct peer *peer);
void wg_peer_staged_free(struct wg_dp *dp, struct staged_packet *sp);

/* The active list (device.c sets it up): slots whose state moved, each at
 * most once; take returns how many it wrote. */
int wg_active_init(struct active_list *a, uint32_t max_peers);
void wg_active_free(struct active_list *a);
uint32_t wg_active_take(struct wg_dp *dp, uint32_t *peers, uint32_t max);
/* Frees a peer and everything it still owns; no reader may reach it. */
void wg_peer_free_now(struct peer *peer);
