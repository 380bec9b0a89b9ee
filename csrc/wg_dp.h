/*
 * wg_dp.h - the whole boundary between pywg's Python control plane and its C
 * data plane. cffi reads this file as its cdef (csrc/build_ffi.py strips the
 * preprocessor lines it cannot parse), so keep it to plain declarations,
 * integer #defines and fixed-size types.
 *
 * Conventions:
 *  - every function returns 0 (or a count) on success and a negative errno
 *    on failure; Python wraps that once, in pywg/_driver/datapath.py;
 *  - times are CLOCK_MONOTONIC nanoseconds, the clock behind Python's
 *    time.monotonic_ns();
 *  - peers are named by a small integer chosen by Python (a slot below
 *    wg_dp_settings.max_peers), so per-peer lookups are array indexing and
 *    stay flat with 100,000 peers;
 *  - addresses are 16 bytes; an IPv4 address sits in the first 4 bytes and
 *    family (4 or 6) says which.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define WG_DP_PEER_NONE 4294967295
#define WG_DP_EVENT_DATA_MAX 148

struct wg_dp;

/* An endpoint: where a peer is reached, or where a datagram came from. */
struct wg_endpoint {
    uint8_t family;          /* 4, 6, or 0 for "none" */
    uint8_t addr[16];
    uint16_t port;           /* host byte order */
    uint32_t scope_id;       /* IPv6 link-local scope */
    uint8_t src_addr[16];    /* our address the peer last reached (sticky source); all zero: any */
    uint32_t src_ifindex;
};

/* Protocol times and limits. Python passes the protocol's values; tests may
 * shorten them so that expiries happen in seconds. */
struct wg_dp_timing {
    uint64_t rekey_after_time_ns;      /* 120 s */
    uint64_t reject_after_time_ns;     /* 180 s */
    uint64_t keepalive_timeout_ns;     /* 10 s: keepKeyFreshReceiving's margin */
    uint64_t rekey_timeout_ns;         /* 5 s: also the least gap between two rekey events */
    uint64_t rekey_after_messages;     /* 2^60 */
    uint64_t reject_after_messages;    /* 2^64 - 2^13 - 1 */
};

/*
 * The fds are Python's: the data plane never closes them. It sets
 * O_NONBLOCK on the TUN and IP_PKTINFO / IPV6_RECVPKTINFO on the sockets.
 * tun_fd may be any fd that keeps packet boundaries (the C tests use a
 * SOCK_DGRAM socketpair); -1 means no TUN.
 */
/*
 * Offloads the data plane may use (wg_dp_settings.offloads). The UDP ones
 * are probed on the sockets and dropped where the kernel lacks them; the TUN
 * ones need tun_vnet_hdr, and the UDP coalescing a kernel that took
 * TUN_F_USO4/6 (Python negotiates the TUN's offloads, which decide what
 * super-packets it reads; any it gets are split). A refusal at run time
 * falls back to one packet per call, never to a drop.
 */
#define WG_DP_OFFLOAD_UDP_GSO 1      /* UDP_SEGMENT: one send per run of sealed datagrams */
#define WG_DP_OFFLOAD_UDP_GRO 2      /* UDP_GRO: coalesced datagrams from the socket */
#define WG_DP_OFFLOAD_TUN_TCP_GRO 4  /* TCP segments of a flow written to the TUN as one */
#define WG_DP_OFFLOAD_TUN_UDP_GRO 8  /* UDP datagrams of a flow written to the TUN as one */

struct wg_dp_settings {
    int tun_fd;
    int tun_vnet_hdr;          /* nonzero if the TUN was opened with IFF_VNET_HDR */
    int tun_pi;                /* nonzero if it was opened without IFF_NO_PI */
    int udp4_fd;               /* bound UDP sockets, -1 if absent */
    int udp6_fd;
    uint32_t mtu;              /* TUN MTU, for padding */
    uint32_t max_peers;        /* size of the peer table (slots) */
    uint32_t event_ring_size;  /* events buffered for Python; a power of two, >= 16 */
    uint32_t offloads;         /* WG_DP_OFFLOAD_* allowed */
    uint32_t crypto_threads;   /* threads that seal or open one batch together (per direction);
                                  0: one per usable core */
    struct wg_dp_timing timing;
};

/* ---- lifetime ---------------------------------------------------------- */
int wg_dp_create(const struct wg_dp_settings *settings, struct wg_dp **out);
void wg_dp_destroy(struct wg_dp *dp);               /* stops threads, wipes keys */
int wg_dp_start(struct wg_dp *dp);                  /* starts the TX and RX threads */
int wg_dp_stop(struct wg_dp *dp);                   /* joins them; idempotent */
int wg_dp_event_fd(struct wg_dp *dp);               /* readable while events are queued */
/* After a rebind; returns once no thread uses the old fds any more. */
int wg_dp_set_udp(struct wg_dp *dp, int udp4_fd, int udp6_fd);
int wg_dp_set_mtu(struct wg_dp *dp, uint32_t mtu);
/*
 * The routes through the TUN that carry an MTU metric: a packet is padded to
 * no more than the MTU of the longest of these prefixes that contains its
 * destination (nor past the interface's), as the kernel module pads to the
 * MTU of the route the packet took. Replaces the whole table; at most
 * WG_DP_ROUTE_MTU_MAX routes; overflow_mtu caps every packet (the smallest
 * MTU of the routes left out past the bound), 0 for none. -EINVAL for a
 * family other than 4 or 6, a prefix longer than the address or an MTU of 0.
 */
#define WG_DP_ROUTE_MTU_MAX 64
struct wg_route_mtu {
    uint8_t family;          /* 4 or 6 */
    uint8_t cidr;
    uint8_t addr[16];
    uint32_t mtu;
};
int wg_dp_set_route_mtus(struct wg_dp *dp, const struct wg_route_mtu *routes, uint32_t n,
                         uint32_t overflow_mtu);
/* The WG_DP_OFFLOAD_* bits in use now: those allowed that the sockets took. */
int wg_dp_offloads(struct wg_dp *dp);
/* Threads per direction that seal or open a batch (the setting or its default). */
int wg_dp_crypto_threads(struct wg_dp *dp);

/* ---- peers --------------------------------------------------------------- */
int wg_dp_peer_add(struct wg_dp *dp, uint32_t peer);
int wg_dp_peer_remove(struct wg_dp *dp, uint32_t peer);  /* drops its IPs, keys, staged packets */
int wg_dp_peer_set_endpoint(struct wg_dp *dp, uint32_t peer, const struct wg_endpoint *ep);
int wg_dp_peer_clear_src(struct wg_dp *dp, uint32_t peer);   /* forget the sticky source */
/* Python authenticated a handshake message from the peer (bytes long, at now):
 * it counts in rx_bytes and as an authenticated receive for the timers. */
int wg_dp_peer_handshake_received(struct wg_dp *dp, uint32_t peer, uint32_t bytes,
                                  uint64_t now);

/* What the timers need and `wg show` prints; the packet paths keep it and it
 * is read without stopping them. 0 means "never". */
struct wg_peer_info {
    struct wg_endpoint endpoint;
    uint64_t rx_bytes;
    uint64_t tx_bytes;
    uint64_t last_tx_auth_ns;        /* any authenticated packet sent (data, keepalive, handshake) */
    uint64_t last_rx_auth_ns;        /* any authenticated data packet received (keepalives too) */
    uint64_t first_tx_data_since_rx_ns; /* arms newHandshake; cleared on authenticated receive */
    uint64_t first_rx_data_since_tx_ns; /* arms sendKeepalive; cleared on authenticated send */
    uint64_t last_tx_data_ns;
    uint64_t last_rx_data_ns;
    uint64_t current_birth_ns;       /* current keypair, 0 if none */
    uint64_t current_send_counter;
    uint32_t previous_index;         /* local (receiver) indices of the three keypairs */
    uint32_t current_index;
    uint32_t next_index;
    uint8_t has_previous;
    uint8_t has_current;
    uint8_t has_next;
    uint8_t current_initiator;
    uint32_t staged;                 /* packets waiting for a key */
};
int wg_dp_peer_info(struct wg_dp *dp, uint32_t peer, struct wg_peer_info *out);

/* Where each of n peers is and what it moved, in one call: what `wg show dump`
 * reads of every peer (a gateway may have a million). family 0: no endpoint;
 * 255: no peer in that slot. Returns n. */
struct wg_peer_transfer {
    uint64_t rx_bytes;
    uint64_t tx_bytes;
    uint8_t addr[16];
    uint16_t port;
    uint8_t family;
    uint8_t pad[5];
};
int wg_dp_peers_transfer(struct wg_dp *dp, const uint32_t *peers, uint32_t n,
                         struct wg_peer_transfer *out);

/* Peers whose counters or timestamps moved since they were last returned:
 * the timer tick visits only these, so an idle gateway with 100,000 peers
 * costs nothing per tick. Returns the count written. */
int wg_dp_active_peers(struct wg_dp *dp, uint32_t *peers, uint32_t max);

/* ---- cryptokey routing ------------------------------------------------- */
int wg_dp_allowedips_insert(struct wg_dp *dp, uint32_t peer, uint8_t family,
                            const uint8_t *addr, uint8_t cidr);
int wg_dp_allowedips_remove(struct wg_dp *dp, uint32_t peer, uint8_t family,
                            const uint8_t *addr, uint8_t cidr);
int wg_dp_allowedips_remove_peer(struct wg_dp *dp, uint32_t peer);
uint32_t wg_dp_allowedips_lookup(struct wg_dp *dp, uint8_t family, const uint8_t *addr);
/* The peer that owns exactly this prefix: 0 and *peer, or -ENOENT. */
int wg_dp_allowedips_owner(struct wg_dp *dp, uint8_t family, const uint8_t *addr,
                           uint8_t cidr, uint32_t *peer);
/* One listed prefix: family 4 (addr[0..3]) or 6, host bits clear. */
struct wg_allowed_ip {
    uint8_t addr[16];
    uint8_t family;
    uint8_t cidr;
};
/* The allowed IPs of n peers, in one call: the configuration keeps them only
 * here, and `wg show` lists them. Each peer's in the order they were given (a
 * prefix given again moves to the end), peer after peer, into out while they
 * fit in max; counts[i] is how many peers[i] owns (0 for an empty slot).
 * Returns the total, which is more than max when they did not all fit. */
int wg_dp_allowedips_list(struct wg_dp *dp, const uint32_t *peers, uint32_t n,
                          uint32_t *counts, struct wg_allowed_ip *out, uint32_t max);
/* How many prefixes all peers own together. */
int wg_dp_allowedips_count(struct wg_dp *dp);

/* ---- the handshake front line ------------------------------------------ */
/* The receive thread checks mac1 of every handshake message, and under load
 * (handshake messages queued for Python past an eighth of the ring, or less
 * than a second since) mac2, answers with cookie replies and rate-limits each
 * source, before anything goes up to Python. It needs our public key (NULL:
 * none yet, every message fails mac1) and libsodium's
 * crypto_aead_xchacha20poly1305_ietf_encrypt for the replies. */
int wg_dp_set_public_key(struct wg_dp *dp, const uint8_t *public_key);
int wg_cookie_register_sodium(void *xchacha_encrypt);

/* ---- keypairs and their indices ----------------------------------------- */
/* The data plane owns every receiver index (random, unique per device). A
 * handshake message we create carries one drawn by wg_dp_index_new, which
 * also releases the peer's previous one; the keypair that handshake becomes
 * takes the same index, and it is freed with the keypair. */
int wg_dp_index_new(struct wg_dp *dp, uint32_t peer, uint32_t *index);

struct wg_keypair_params {
    uint32_t local_index;      /* the peer's pending handshake index (wg_dp_index_new) */
    uint32_t remote_index;     /* receiver index we write */
    uint8_t send_key[32];
    uint8_t recv_key[32];
    uint8_t initiator;         /* initiator: becomes current at once; responder: next */
    uint64_t birth_ns;
};
/* -ESTALE if local_index is no longer the peer's pending handshake index (a
 * newer handshake took its place). It sends nothing: after an initiator's
 * keypair the caller sends the staged packets with wg_dp_send_keepalive, as
 * the kernel's receive.c does after wg_noise_handshake_begin_session. */
int wg_dp_keypair_install(struct wg_dp *dp, uint32_t peer, const struct wg_keypair_params *kp);
/* Wipes every keypair and releases the pending handshake's index
 * (zeroKeyMaterial, a new private key). */
int wg_dp_keypairs_clear(struct wg_dp *dp, uint32_t peer);
int wg_dp_staged_clear(struct wg_dp *dp, uint32_t peer);     /* retries exhausted */

/* ---- packets sent by Python through the data plane's sockets ------------ */
/* A handshake message to the peer's endpoint: counts as authenticated sent. */
int wg_dp_send_to_peer(struct wg_dp *dp, uint32_t peer, const uint8_t *msg, size_t len);
/* Any datagram (a cookie reply) to an endpoint; src_addr picks our address. */
int wg_dp_send_to(struct wg_dp *dp, const struct wg_endpoint *ep, const uint8_t *msg, size_t len);
/* A handshake answered as the responder: what the driver does for each
 * initiation the protocol core accepted, for a batch of them in one call. */
struct wg_handshake_answer {
    struct wg_keypair_params keypair;  /* the session, installed as the peer's next */
    struct wg_endpoint source;         /* where the initiation came from */
    uint32_t peer;
    uint32_t received;                 /* the initiation's length */
    uint8_t response[92];              /* the response to send, macs included */
    int32_t result;                    /* out: see wg_dp_handshakes_answer */
};
/* For each answer in order: the peer's endpoint becomes its source (an
 * authenticated message roams the peer), the initiation counts as an
 * authenticated receive of `received` bytes at now_ns, and the keypair goes
 * in; then every response whose keypair went in is sent to its peer, with one
 * sendmmsg per socket (those it cannot take go one at a time, as
 * wg_dp_send_to_peer sends them). result: 0 (sent), -ENOENT (no such peer),
 * -EAFNOSUPPORT (a bad source: nothing done), -ESTALE (as
 * wg_dp_keypair_install: neither installed nor sent), or the send's -errno.
 * The keys in `answers` are wiped. Returns how many responses went. */
int wg_dp_handshakes_answer(struct wg_dp *dp, struct wg_handshake_answer *answers, uint32_t n,
                            uint64_t now_ns);
/* Sends the staged packets, or else a keepalive; with no usable keypair the
 * keepalive is staged and a handshake asked for. */
int wg_dp_send_keepalive(struct wg_dp *dp, uint32_t peer);

/* ---- events up to Python ----------------------------------------------- */
#define WG_EV_HANDSHAKE 1          /* data/len: a type 1, 2 or 3 message that passed the front
                                      line; src: where from; peer: for types 2 and 3, whose
                                      index it names */
#define WG_EV_NEED_HANDSHAKE 2     /* packets staged and no usable keypair */
#define WG_EV_KEYPAIR_CONFIRMED 3  /* responder's next keypair became current (time_ns) */
#define WG_EV_REKEY_SEND 4         /* keepKeyFreshSending: current keypair old or worn */
#define WG_EV_REKEY_RECV 5         /* keepKeyFreshReceiving: initiator's keypair near expiry */
#define WG_EV_ENDPOINT_CHANGED 6   /* roaming: src is the new endpoint */
#define WG_EV_TUN_GONE 7           /* the TUN fd reported EOF or an error */

struct wg_event {
    uint32_t type;
    uint32_t peer;                 /* the peer's slot, or WG_DP_PEER_NONE (initiations) */
    uint64_t time_ns;
    struct wg_endpoint src;
    uint32_t len;
    uint8_t data[148];
};
/* Returns the count read. The event fd stays readable until the ring is
 * empty, so read until a call returns fewer than max. */
int wg_dp_events_read(struct wg_dp *dp, struct wg_event *out, uint32_t max);

/* ---- device counters ----------------------------------------------------- */
struct wg_dp_stats {
    uint64_t tun_rx_packets, tun_tx_packets;
    uint64_t udp_rx_packets, udp_tx_packets;
    uint64_t udp_rx_syscalls, udp_tx_syscalls, tun_rx_syscalls, tun_tx_syscalls;
    uint64_t drop_no_peer;          /* TUN packet to an address no peer allows */
    uint64_t drop_bad_src;          /* decrypted packet from an address its peer may not use */
    uint64_t drop_malformed;        /* wrong size, unknown type, bad IP header */
    uint64_t drop_unknown_index;    /* type 2, 3 or 4 naming no index of ours (of its kind) */
    uint64_t drop_decrypt;          /* authentication failed */
    uint64_t drop_replay;
    uint64_t drop_expired;          /* keypair past REJECT_AFTER_TIME/MESSAGES */
    uint64_t drop_staged_overflow;  /* oldest staged packet dropped (or the pool was full) */
    uint64_t drop_event_overflow;   /* event ring full */
    uint64_t drop_send_error;       /* sendmmsg refused it, or no room in time */
    uint64_t keepalives_rx, keepalives_tx;
    uint64_t event_ring_used;       /* current fill, the "under load" signal */
    uint64_t drop_no_endpoint;      /* sealed for a peer with no endpoint */
    uint64_t drop_staged_cleared;   /* staged packets dropped by wg_dp_staged_clear or removal */
    uint64_t drop_tun_write;        /* the TUN refused a decrypted packet */
    uint64_t icmp_tx;               /* destination-unreachable replies written to the TUN */
    uint64_t handshakes_rx;         /* type 1-3 messages queued for Python */
    uint64_t udp_tx_gso;            /* UDP_SEGMENT sends (of more than one datagram) */
    uint64_t udp_gso_refused;       /* UDP_SEGMENT sends the kernel refused, then sent one by one */
    uint64_t udp_rx_gro;            /* coalesced receives split (of more than one datagram) */
    uint64_t tun_rx_gso;            /* super-packets read from the TUN and split */
    uint64_t tun_tx_gro;            /* super-packets written to the TUN (of more than one packet) */
    uint64_t tun_gro_refused;       /* super-packets the TUN refused, then written one by one */
    uint64_t drop_handshake_mac;    /* type 1 or 2 with a wrong mac1 (or no key of ours yet) */
    uint64_t handshake_cookies_tx;  /* cookie replies sent (under load, mac2 missing or wrong) */
    uint64_t drop_handshake_ratelimit; /* under load, the source over its budget (for cookie
                                          replies, or for messages with a valid mac2) */
    uint64_t handshake_under_load;  /* 1 while under load (the handshake queue, held 1 s) */
    uint64_t drop_loop;             /* our own datagram routed back into the TUN to its peer */
    uint64_t reserved[0];           /* room to grow without breaking the layout: none left */
};
int wg_dp_stats_get(struct wg_dp *dp, struct wg_dp_stats *out);

/* ---- crypto backends (csrc/crypto/aead.h) -------------------------------- */

/* ChaCha20-Poly1305 backends are self-tested and the first that passes is
 * selected, or the one PYWG_AEAD names; call wg_aead_register_sodium()
 * (libsodium's crypto_aead_chacha20poly1305_ietf_encrypt and _decrypt)
 * before wg_aead_init() for libsodium to be considered. */
int wg_aead_register_sodium(void *encrypt, void *decrypt);
int wg_aead_init(void);
const char *wg_aead_name(void);            /* the selected one; NULL before init */
/* For `pywg selftest` on a device: every compiled-in backend, fastest first
 * ("avx512", "avx2" on x86_64; "neon" on aarch64, and armv7 when the CPU has
 * NEON; "sodium", "portable", "portable32"); writes up to max names and
 * returns the count. A backend's status runs its self-test once: 0, -ENOENT
 * (no such name), -ENOTSUP (not on this CPU, or sodium not registered),
 * -EIO (failed it). */
int wg_aead_backends(const char **names, size_t max);
int wg_aead_status(const char *name);
