/*
 * events.c - the event ring; see events.h.
 */
#include "events.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

int wg_events_init(struct event_ring *r, uint32_t size)
{
    if (size < 16 || (size & (size - 1)) || size > (1u << 20))
        return -EINVAL;
    r->slots = calloc(size, sizeof(*r->slots));
    if (!r->slots)
        return -ENOMEM;
    r->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->fd < 0) {
        int err = -errno;
        free(r->slots);
        return err;
    }
    r->size = size;
    r->mask = size - 1;
    r->head = r->count = 0;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void wg_events_free(struct event_ring *r)
{
    close(r->fd);
    free(r->slots);
    r->slots = NULL;
    pthread_mutex_destroy(&r->lock);
}

/* An eventfd write or read can fail only with EAGAIN here (the counter at
 * its limit, or already zero): either way the fd is in the wanted state. */
static void fd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t ret = write(fd, &one, sizeof(one));
    (void)ret;
}

static void fd_clear(int fd)
{
    uint64_t value;
    ssize_t ret = read(fd, &value, sizeof(value));
    (void)ret;
}

int wg_events_push(struct event_ring *r, const struct wg_event *ev, bool droppable)
{
    uint32_t limit = droppable ? r->size - r->size / 8 : r->size;

    pthread_mutex_lock(&r->lock);
    if (r->count >= limit) {
        pthread_mutex_unlock(&r->lock);
        return -ENOSPC;
    }
    r->slots[(r->head + r->count) & r->mask] = *ev;
    if (ev->type == WG_EV_HANDSHAKE)
        atomic_fetch_add_explicit(&r->handshakes, 1, memory_order_relaxed);
    /* Signal only the change from empty: the fd then stays readable until
     * a pop empties the ring again. */
    if (r->count++ == 0)
        fd_signal(r->fd);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

uint32_t wg_events_pop(struct event_ring *r, struct wg_event *out, uint32_t max)
{
    uint32_t n = 0;

    pthread_mutex_lock(&r->lock);
    while (n < max && r->count) {
        out[n] = r->slots[r->head];
        if (out[n++].type == WG_EV_HANDSHAKE)
            atomic_fetch_sub_explicit(&r->handshakes, 1, memory_order_relaxed);
        r->head = (r->head + 1) & r->mask;
        r->count--;
    }
    if (r->count == 0)
        fd_clear(r->fd);
    pthread_mutex_unlock(&r->lock);
    return n;
}

uint32_t wg_events_used(struct event_ring *r)
{
    uint32_t n;

    pthread_mutex_lock(&r->lock);
    n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

uint32_t wg_events_handshakes(struct event_ring *r)
{
    return atomic_load_explicit(&r->handshakes, memory_order_relaxed);
}
