/*
 * keypair.h - transport keypairs and their rotation through a peer's
 * previous, current and next slots (the kernel's noise.c, wireguard-go's
 * keypair.go).
 *
 * Rotation (protocol-notes.md 2.3): an initiator's new keypair becomes
 * current at once; a responder's waits in next until the first data packet
 * under it proves the initiator has it too. Slots change under peer->lock;
 * the packet threads load them without it, and dropped keypairs are wiped
 * and freed through the epoch once no thread can hold them.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "indextable.h"
#include "replay.h"

struct peer;

struct keypair {
    struct index_entry entry;           /* local index; in dp->indextable */
    struct epoch_head rcu;
    struct peer *peer;
    uint32_t remote_index;
    bool initiator;
    uint64_t birth_ns;
    _Atomic uint64_t send_counter;      /* next counter to use */
    uint8_t send_key[32];
    uint8_t recv_key[32];
    struct wg_replay replay;            /* RX thread only */
};

/* Control calls. A fresh random index for the peer's next handshake message,
 * in place of the one its previous handshake had. */
int wg_keypair_index_new(struct wg_dp *dp, struct peer *peer, uint32_t *index);
/* Builds the keypair, gives it the pending handshake's index (-ESTALE if
 * p->local_index is not that one any more) and rotates it in. */
int wg_keypair_install(struct wg_dp *dp, struct peer *peer, const struct wg_keypair_params *p);
/* Drops every keypair of the peer and its pending handshake's index
 * (zeroKeyMaterial, a new private key, or removal). */
void wg_keypairs_clear(struct wg_dp *dp, struct peer *peer);
/* RX thread: promotes `kp` if it is the peer's next keypair; true if so. */
bool wg_keypair_confirm(struct wg_dp *dp, struct peer *peer, struct keypair *kp);

/* The current keypair if it may still send (age and counter), else NULL. */
struct keypair *wg_keypair_sendable(struct wg_dp *dp, struct peer *peer, uint64_t now);
/* Reserves up to n counters; returns how many, the first in *first. */
uint32_t wg_keypair_reserve(struct wg_dp *dp, struct keypair *kp, uint32_t n, uint64_t *first);
/* Immediate free with wiping (no reader may hold it). */
void wg_keypair_free_now(struct keypair *kp);
