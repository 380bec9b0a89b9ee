/*
 * queueing.h - packets in flight and the two packet threads' state, shared
 * by send.c, receive.c, socket.c and tun.c (the kernel's queueing.h).
 *
 * Every buffer has DP_HEADROOM bytes before the IP packet and DP_TAILROOM
 * after its largest size, so sealing (header in front, padding and tag
 * behind) and opening happen in place, over a batch at once that the crypt
 * pool may share among threads.
 */
#pragma once
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "device.h"
#include "epoch.h"
#include "messages.h"
#include "offload.h"

struct peer;
struct keypair;

#define DP_BUFFER_SIZE (DP_HEADROOM + DP_MAX_PACKET + DP_TAILROOM)
#define DP_CMSG_SIZE 128                /* room for an in_pktinfo and an in6_pktinfo */
#define DP_SEND_CMSG_SIZE 64            /* an in6_pktinfo and a UDP_SEGMENT */

struct packet {
    uint8_t *data;                      /* the IP packet (plaintext) */
    uint32_t len;                       /* plaintext length, before padding */
    uint32_t wire_len;                  /* the datagram: header, ciphertext, tag */
    struct peer *peer;
    struct keypair *keypair;
    uint64_t counter;
    unsigned int next;                  /* TX: next packet of the same peer */
    unsigned int msg;                   /* RX: the received datagram it came in */
    int drop;                           /* RX: 0, or the stat that counts its drop */
};

union sockaddr_inet {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/* Scratch for one sender (each thread, and the control calls): a batch of
 * datagrams to one endpoint, as messages of one datagram each or, with
 * UDP_SEGMENT, of a run of them (one iovec per datagram, no copy). */
struct send_scratch {
    struct mmsghdr msgs[DP_BURST];
    struct iovec iov[DP_BURST];            /* by datagram */
    uint16_t first[DP_BURST];              /* by message: its first datagram */
    uint16_t segs[DP_BURST];               /* by message: how many datagrams */
    union sockaddr_inet dst;
    union {
        char buf[DP_CMSG_SIZE];
        struct cmsghdr align;
    } ctrl;                                /* the source address, shared */
    union {
        char buf[DP_SEND_CMSG_SIZE];
        struct cmsghdr align;
    } seg_ctrl[DP_BURST];                  /* by message, for those with segments */
    uint8_t *bufs[DP_BURST];
    uint32_t lens[DP_BURST];
    struct packet *group[DP_BURST];        /* the packets being sealed */
    struct packet staged[DP_BATCH_SIZE];   /* views of staged packets */
    struct crypt_pool *pool;               /* helpers for this batch, or NULL */
    int err;                               /* the last send error (errno), 0 if none */
};

/* Datagrams each to its own endpoint, gathered over a batch and sent with one
 * sendmmsg per socket (socket.c): the receive thread's cookie replies to
 * handshake messages under load (in data[]), a control call's handshake
 * responses (the caller's buffers). */
struct reply_batch {
    unsigned int n;
    struct wg_endpoint to[DP_BATCH_SIZE];
    const uint8_t *buf[DP_BATCH_SIZE];  /* datagram i */
    uint32_t len[DP_BATCH_SIZE];
    bool sent[DP_BATCH_SIZE];           /* out: datagram i went */
    unsigned int item[DP_BATCH_SIZE];   /* by message: its datagram */
    uint8_t data[DP_BATCH_SIZE][MESSAGE_COOKIE_REPLY_SIZE];
    struct mmsghdr msgs[DP_BATCH_SIZE];
    struct iovec iov[DP_BATCH_SIZE];
    union sockaddr_inet names[DP_BATCH_SIZE];
    union {
        char buf[DP_SEND_CMSG_SIZE];
        struct cmsghdr align;
    } ctrl[DP_BATCH_SIZE];
};

/* queueing.c: threads that seal or open one batch together. */
typedef void (*crypt_fn)(void *ctx, unsigned int lo, unsigned int hi);
struct crypt_pool {
    unsigned int helpers;               /* threads besides the caller's */
    pthread_t threads[DP_MAX_CRYPTO_THREADS];
    /* The job, written by the caller before it publishes claim. */
    crypt_fn fn;
    void *ctx;
    unsigned int n, chunk_size;
    uint32_t gen;
    _Atomic uint32_t chunks;
    _Atomic uint64_t claim;             /* generation << 32 | next chunk */
    _Atomic uint32_t done;              /* chunks finished; a futex for the caller */
    _Atomic bool caller_waiting;
    _Atomic uint32_t seq;               /* a futex for the helpers: bumped per job */
    _Atomic uint32_t sleeping;
    _Atomic bool stop;
};

unsigned int wg_crypt_threads_default(void);   /* the CPUs this process may use */
/* Starts threads - 1 helpers (none for 1); 0 or -errno. */
int wg_crypt_pool_start(struct crypt_pool *p, unsigned int threads);
void wg_crypt_pool_stop(struct crypt_pool *p);
/* fn over [0, n) in ranges, on the caller's thread and the pool's (p may be
 * NULL, or the batch too small to share: then all on the caller's). */
void wg_crypt_run(struct crypt_pool *p, crypt_fn fn, void *ctx, unsigned int n, size_t bytes);

struct loop {
    struct wg_dp *dp;
    pthread_t thread;
    bool started;
    struct epoch_reader reader;
    uint64_t batch;                     /* batch counter, for the per-peer scratch */
    struct crypt_pool pool;             /* while the thread runs */
    struct packet pkts[DP_BURST];
    struct send_scratch send;
    /* TX: TUN packets land in the arena, and so do the segments of the
     * super-packets, which are read into gso_buf; what of one did not fit
     * a batch waits there (pending_next < pending.segments) for the next. */
    uint8_t *arena;                     /* DP_TX_ARENA bytes */
    uint8_t *gso_buf;                   /* DP_BUFFER_SIZE bytes */
    struct gso_packet pending;
    uint32_t pending_next;
    /* RX: DP_BATCH_SIZE buffers of DP_BUFFER_SIZE, where each datagram came
     * from and what it was sent to; the opened packets for the TUN and the
     * writes they become. */
    uint8_t *buffers;
    unsigned int rx_count, rx_next;     /* datagrams received, and the next to split */
    bool rx_full;                       /* the last recvmmsg filled every buffer */
    struct mmsghdr msgs[DP_BATCH_SIZE];
    struct iovec iov[DP_BATCH_SIZE];
    union sockaddr_inet names[DP_BATCH_SIZE];
    union {
        char buf[DP_CMSG_SIZE];
        struct cmsghdr align;
    } ctrl[DP_BATCH_SIZE];
    unsigned int deliver[DP_BURST];
    struct gro_item items[DP_BURST];
    struct gro_table gro;
    struct reply_batch replies;
};

static inline uint8_t *loop_buffer(struct loop *l, unsigned int i)
{
    return l->buffers + (size_t)i * DP_BUFFER_SIZE;
}

/* send.c */
void *wg_send_thread(void *arg);
void wg_send_batch(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now);
/* Sends what is staged (caller holds peer->tx_lock); asks for a handshake
 * if no keypair can send. */
void wg_send_staged(struct wg_dp *dp, struct send_scratch *s, struct peer *peer, uint64_t now);
/* A control call (the control mutex held): wg_dp_handshakes_answer, through
 * dp->control_replies. Returns how many responses went. */
int wg_send_answers(struct wg_dp *dp, struct wg_handshake_answer *answers, uint32_t n,
                    uint64_t now);
/* Control calls (the control mutex held), through dp->control_scratch: the
 * staged packets or else a keepalive (staged, and a handshake asked for, if
 * no keypair can send); a handshake message to the peer's endpoint; any
 * datagram to an endpoint. */
void wg_send_keepalive(struct wg_dp *dp, struct peer *peer);
int wg_send_to_peer(struct wg_dp *dp, struct peer *peer, const uint8_t *msg, size_t len);
int wg_send_to(struct wg_dp *dp, const struct wg_endpoint *ep, const uint8_t *msg, size_t len);

/* receive.c */
void *wg_receive_thread(void *arg);
/* The n packets wg_socket_receive put in l->pkts, through the three passes
 * (the RX thread's batch; the receive fuzz driver calls it directly). */
void wg_receive_batch(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now);

/* icmp.c: a destination-unreachable reply for a packet no peer takes. */
void wg_icmp_unreachable(struct wg_dp *dp, const uint8_t *pkt, uint32_t len, uint64_t now);
