/*
 * events.h - the bounded ring that carries events and handshake messages up
 * to Python, with an eventfd that is readable while the ring is not empty.
 *
 * Handshake messages (droppable) may fill only seven eighths of the ring, so
 * that a flood of them cannot crowd out the rarer events Python must see.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "wg_dp.h"

struct event_ring {
    pthread_mutex_t lock;
    struct wg_event *slots;
    uint32_t size, mask, head, count;
    _Atomic uint32_t handshakes;        /* how many of them are handshake messages */
    int fd;
};

int wg_events_init(struct event_ring *r, uint32_t size);
void wg_events_free(struct event_ring *r);
/* -ENOSPC if there was no room. */
int wg_events_push(struct event_ring *r, const struct wg_event *ev, bool droppable);
uint32_t wg_events_pop(struct event_ring *r, struct wg_event *out, uint32_t max);
uint32_t wg_events_used(struct event_ring *r);
/* Handshake messages queued: the kernel's handshake queue depth, the under-load signal. */
uint32_t wg_events_handshakes(struct event_ring *r);
