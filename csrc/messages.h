/*
 * messages.h - WireGuard's wire format and every protocol constant, C side.
 * pywg/_constants.py is the Python side; tests/unit/test_constants.py checks
 * that the two agree. Layouts: WireGuard whitepaper section 5.4.
 */
#pragma once
#include <stdint.h>

enum message_type {
    MESSAGE_INVALID = 0,
    MESSAGE_HANDSHAKE_INITIATION = 1,
    MESSAGE_HANDSHAKE_RESPONSE = 2,
    MESSAGE_HANDSHAKE_COOKIE = 3,
    MESSAGE_DATA = 4,
};

enum message_size {
    MESSAGE_INITIATION_SIZE = 148,
    MESSAGE_RESPONSE_SIZE = 92,
    MESSAGE_COOKIE_REPLY_SIZE = 64,
    MESSAGE_DATA_HEADER_SIZE = 16,       /* type, receiver index, counter */
    MESSAGE_DATA_MIN_SIZE = 32,          /* header + tag: a keepalive */
    MESSAGE_PADDING_MULTIPLE = 16,
    NOISE_PUBLIC_KEY_LEN = 32,
    NOISE_SYMMETRIC_KEY_LEN = 32,
    NOISE_AUTHTAG_LEN = 16,
    COOKIE_LEN = 16,
    COOKIE_NONCE_LEN = 24,
    MESSAGE_MAC_LEN = 16,               /* mac1 and mac2 end types 1 and 2, in that order */
};

/* The labels hashed with a public key into the mac1 and cookie keys. */
static const uint8_t LABEL_MAC1[8] = { 'm', 'a', 'c', '1', '-', '-', '-', '-' };
static const uint8_t LABEL_COOKIE[8] = { 'c', 'o', 'o', 'k', 'i', 'e', '-', '-' };

/* Where a message names one of our indices: after the type, a response has
 * its sender index then ours; a cookie reply and a data message only ours. */
enum message_offset {
    MESSAGE_RESPONSE_RECEIVER = 8,
    MESSAGE_COOKIE_RECEIVER = 4,
    MESSAGE_DATA_RECEIVER = 4,
};

/* Replay window: 8192 bits of bitmap minus one word, as the kernel module
 * and wireguard-go do (RFC 6479). */
enum counter_window {
    COUNTER_BITS_TOTAL = 8192,
    COUNTER_REDUNDANT_BITS = 64,
    COUNTER_WINDOW_SIZE = COUNTER_BITS_TOTAL - COUNTER_REDUNDANT_BITS,
};

enum limits {
    REKEY_AFTER_TIME_S = 120,
    REJECT_AFTER_TIME_S = 180,
    REKEY_ATTEMPT_TIME_S = 90,
    REKEY_TIMEOUT_S = 5,
    REKEY_TIMEOUT_JITTER_MAX_MS = 334,
    KEEPALIVE_TIMEOUT_S = 10,
    COOKIE_SECRET_MAX_AGE_S = 120,
    MAX_STAGED_PACKETS = 128,
    MAX_QUEUED_INCOMING_HANDSHAKES = 4096,
    UNDER_LOAD_AFTER_S = 1,             /* under load lasts this long after the queue eased */
    RATELIMIT_PACKETS_PER_SECOND = 20,  /* per source, for handshakes carrying a cookie */
    RATELIMIT_PACKETS_BURSTABLE = 5,
    MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME_S / REKEY_TIMEOUT_S,
};

#define REKEY_AFTER_MESSAGES (1ULL << 60)
/* The whitepaper's limit, as wireguard-go uses it: 2^64 - 2^13 - 1. */
#define REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))

/* Byte order: WireGuard's own fields are little-endian, those of IP and
 * the transports big-endian. */
static inline uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    put_be16(p, (uint16_t)(v >> 16));
    put_be16(p + 2, (uint16_t)v);
}

/*
 * Data plane limits: implementation choices of pywg's C data plane, not
 * protocol values (the Python side has no copy of them).
 */
enum dp_limits {
    DP_BATCH_SIZE = 128,                 /* TUN reads per batch, datagrams per recvmmsg (wireguard-go: IdealBatchSize) */
    DP_BURST = 1024,                     /* packets in one batch once super-packets are split */
    DP_UDP_MAX_SEGMENTS = 64,            /* datagrams per UDP_SEGMENT send (the kernel's UDP_MAX_SEGMENTS before 6.9) */
    DP_UDP_GRO_MAX_SEGMENTS = 128,       /* datagrams in one UDP_GRO receive we split; more are dropped (6.9+ senders use 128) */
    DP_UDP_GSO_MAX_BYTES = 65507,        /* payload of one UDP_SEGMENT send: 65535 less the IPv4 and UDP headers */
    DP_UDP_GSO_RETRY_MS = 1000,          /* after a refused UDP_SEGMENT send, a peer's datagrams go one by one this long */
    DP_TX_ARENA = 1 << 21,               /* bytes of TUN packets and segments in one TX batch */
    DP_TUN_INLINE = 1984,                /* a TUN read lands in the arena up to this size (or the MTU) */
    DP_MAX_PACKET = 65535,               /* largest IP packet or UDP payload handled */
    DP_HEADROOM = 32,                    /* room before a packet: the data header (16), or tun_pi and virtio headers (14) */
    DP_TAILROOM = 32,                    /* room after a packet: padding (< 16) and the tag (16) */
    DP_STAGED_TOTAL_MAX = 16384,         /* staged packets over all peers together */
    DP_STAGED_BYTES_MAX = 32 << 20,      /* and their bytes */
    DP_ICMP_PER_SECOND = 200,            /* destination-unreachable replies written to the TUN */
    DP_SEND_WAIT_MS = 1000,              /* longest wait for room in a full UDP send buffer */
    DP_MAX_READERS = 8,                  /* threads that read the data plane's tables without locks */
    DP_MAX_CRYPTO_THREADS = 64,          /* threads sealing or opening one batch (Python: DATAPLANE_MAX_CRYPTO_THREADS) */
    DP_CRYPTO_FORK_PACKETS = 32,         /* a batch shared among threads has at least this many packets */
    DP_CRYPTO_FORK_BYTES = 16384,        /* and this many bytes */
    DP_CRYPTO_CHUNK_MIN = 4,             /* packets a thread claims at once, at least */
    DP_RATELIMIT_SLOTS = 1 << 14,        /* sources the handshake rate limiter tracks (a power of two) */
    DP_RATELIMIT_PROBE = 16,             /* slots looked at for a source before it is refused */
};
