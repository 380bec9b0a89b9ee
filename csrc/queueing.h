/*
 * queueing.h - packets in flight and the two packet threads' state, shared
 * by send.c, receive.c, socket.c and tun.c (the kernel's queueing.h).
 *
 * Every buffer has DP_HEADROOM bytes before the IP packet and DP_TAILROOM
 * after its largest size, so sealing (header in front, padding and tag
 * behind) and opening happen in place. Seal and open are functions over an
 * array of packets: a later change can split that array over worker threads
 * without touching the loops.
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

struct peer;
struct keypair;

#define DP_BUFFER_SIZE (DP_HEADROOM + DP_MAX_PACKET + DP_TAILROOM)
#define DP_CMSG_SIZE 128                /* room for an in_pktinfo and an in6_pktinfo */

struct packet {
    uint8_t *data;                      /* the IP packet (plaintext) */
    uint32_t len;                       /* plaintext length, before padding */
    uint32_t wire_len;                  /* the datagram: header, ciphertext, tag */
    struct peer *peer;
    struct keypair *keypair;
    uint64_t counter;
    unsigned int next;                  /* TX: next packet of the same peer */
    int drop;                           /* RX: 0, or the stat that counts its drop */
};

union sockaddr_inet {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/* Scratch for one sender (each thread, and the control calls): a batch of
 * datagrams to one endpoint. */
struct send_scratch {
    struct mmsghdr msgs[DP_BATCH_SIZE];
    struct iovec iov[DP_BATCH_SIZE];
    union sockaddr_inet dst;
    union {
        char buf[DP_CMSG_SIZE];
        struct cmsghdr align;
    } ctrl;
    uint8_t *bufs[DP_BATCH_SIZE];
    uint32_t lens[DP_BATCH_SIZE];
    struct packet *group[DP_BATCH_SIZE];   /* the packets being sealed */
    struct packet staged[DP_BATCH_SIZE];   /* views of staged packets */
    int err;                               /* the last send error (errno), 0 if none */
};

struct loop {
    struct wg_dp *dp;
    pthread_t thread;
    bool started;
    struct epoch_reader reader;
    uint64_t batch;                     /* batch counter, for the per-peer scratch */
    uint8_t *buffers;                   /* DP_BATCH_SIZE buffers of DP_BUFFER_SIZE */
    struct packet pkts[DP_BATCH_SIZE];
    struct send_scratch send;
    /* RX: where each datagram came from and what it was sent to. */
    struct mmsghdr msgs[DP_BATCH_SIZE];
    struct iovec iov[DP_BATCH_SIZE];
    union sockaddr_inet names[DP_BATCH_SIZE];
    union {
        char buf[DP_CMSG_SIZE];
        struct cmsghdr align;
    } ctrl[DP_BATCH_SIZE];
};

static inline uint8_t *loop_buffer(struct loop *l, unsigned int i)
{
    return l->buffers + (size_t)i * DP_BUFFER_SIZE;
}

/* send.c */
void *wg_send_thread(void *arg);
void wg_send_batch(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now);
/* Seals pkts in place with consecutive counters from `first`. */
void wg_seal_batch(struct packet **pkts, unsigned int n, struct keypair *kp, uint64_t first,
                   uint32_t mtu);
/* Sends what is staged (caller holds peer->tx_lock); asks for a handshake
 * if no keypair can send. */
void wg_send_staged(struct wg_dp *dp, struct send_scratch *s, struct peer *peer, uint64_t now);
void wg_staged_purge(struct wg_dp *dp, struct peer *peer);

/* receive.c */
void *wg_receive_thread(void *arg);
void wg_receive_batch(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now);
/* Opens pkts in place; a failure sets p->drop. */
void wg_open_batch(struct packet **pkts, unsigned int n);

/* icmp.c: a destination-unreachable reply for a packet no peer takes. */
void wg_icmp_unreachable(struct wg_dp *dp, const uint8_t *pkt, uint32_t len, uint64_t now);

/* icmp.c: the Internet checksum, also for TUN packets that ask for one. */
uint32_t wg_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t wg_csum_fold(uint32_t sum);

/* send.c: bytes of zero padding added to a plaintext of len before sealing. */
uint32_t wg_padding(uint32_t len, uint32_t mtu);
