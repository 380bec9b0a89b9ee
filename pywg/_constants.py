"""Every protocol constant of pywg, in one place (Python side).

csrc/messages.h is the C side; tests/unit/test_constants.py checks that they agree.
Sources: the WireGuard whitepaper (sections 5 and 6), the Linux module's messages.h and
wireguard-go's device/constants.go.
"""

from typing import Final

# Noise construction and WireGuard's identifiers (whitepaper 5.4).
CONSTRUCTION: Final = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER: Final = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1: Final = b"mac1----"
LABEL_COOKIE: Final = b"cookie--"

# Message types and sizes.
MESSAGE_HANDSHAKE_INITIATION: Final = 1
MESSAGE_HANDSHAKE_RESPONSE: Final = 2
MESSAGE_HANDSHAKE_COOKIE: Final = 3
MESSAGE_DATA: Final = 4
MESSAGE_INITIATION_SIZE: Final = 148
MESSAGE_RESPONSE_SIZE: Final = 92
MESSAGE_COOKIE_REPLY_SIZE: Final = 64
MESSAGE_DATA_HEADER_SIZE: Final = 16
MESSAGE_DATA_MIN_SIZE: Final = 32
MESSAGE_PADDING_MULTIPLE: Final = 16
# Where a message names one of our indices (the data plane routes types 2 to 4 by it).
MESSAGE_RESPONSE_RECEIVER: Final = 8
MESSAGE_COOKIE_RECEIVER: Final = 4
MESSAGE_DATA_RECEIVER: Final = 4

NOISE_PUBLIC_KEY_LEN: Final = 32
NOISE_SYMMETRIC_KEY_LEN: Final = 32
NOISE_AUTHTAG_LEN: Final = 16
NOISE_HASH_LEN: Final = 32
NOISE_TIMESTAMP_LEN: Final = 12
COOKIE_LEN: Final = 16
COOKIE_NONCE_LEN: Final = 24

# Replay window (RFC 6479 as in the kernel and wireguard-go).
COUNTER_BITS_TOTAL: Final = 8192
COUNTER_REDUNDANT_BITS: Final = 64
COUNTER_WINDOW_SIZE: Final = COUNTER_BITS_TOTAL - COUNTER_REDUNDANT_BITS

# Timers and limits (whitepaper 6.1, 6.4).
REKEY_AFTER_MESSAGES: Final = 1 << 60
REJECT_AFTER_MESSAGES: Final = (1 << 64) - (1 << 13) - 1
REKEY_AFTER_TIME_S: Final = 120
REJECT_AFTER_TIME_S: Final = 180
REKEY_ATTEMPT_TIME_S: Final = 90
REKEY_TIMEOUT_S: Final = 5
REKEY_TIMEOUT_JITTER_MAX_MS: Final = 334
KEEPALIVE_TIMEOUT_S: Final = 10
COOKIE_SECRET_MAX_AGE_S: Final = 120
COOKIE_SECRET_LATENCY_S: Final = 5
MAX_TIMER_HANDSHAKES: Final = REKEY_ATTEMPT_TIME_S // REKEY_TIMEOUT_S
HANDSHAKE_INITIATION_RATE_NS: Final = 1_000_000_000 // 50
MAX_STAGED_PACKETS: Final = 128
MAX_QUEUED_INCOMING_HANDSHAKES: Final = 4096
UNDER_LOAD_AFTER_S: Final = 1

# Per-source handshake rate limit while under load (token bucket; csrc/ratelimiter.c).
RATELIMIT_PACKETS_PER_SECOND: Final = 20
RATELIMIT_PACKETS_BURSTABLE: Final = 5

# TAI64N: the label for 1970 and the whitening of the nanoseconds.
TAI64_LABEL: Final = 0x400000000000000A
TAI64N_WHITENER_MASK: Final = 0xFFFFFFFF & ~((1 << 24) - 1)

DEFAULT_MTU: Final = 1420
DEFAULT_PORT_RANGE: Final = (1024, 65535)

# The handshake core (pywg/_protocol): sizes and limits that are ours, not the wire's.
AEAD_NONCE_LEN: Final = 12  # ChaCha20-Poly1305 IETF: 4 zero bytes + LE64 counter
NOISE_PRIVATE_KEY_LEN: Final = 32
MESSAGE_MAC_LEN: Final = 16  # mac1 and mac2 are each one keyed-BLAKE2s output
WG_KEY_LEN_BASE64: Final = 44  # base64 of 32 bytes, with its one '=' of padding

# Timers (pywg/_protocol/timers.py) and the data plane's keypairs.
NSEC_PER_SEC: Final = 1_000_000_000  # the core's clock is CLOCK_MONOTONIC in nanoseconds
NSEC_PER_MSEC: Final = 1_000_000
# All key material is erased this long after the last session was derived (whitepaper 6.3).
ZERO_KEY_MATERIAL_AFTER_S: Final = 3 * REJECT_AFTER_TIME_S
# Inner packets are trimmed to their IP length after decryption (the padding goes).
IPV4_HEADER_MIN_LEN: Final = 20
IPV6_HEADER_LEN: Final = 40
MAX_PEERS: Final = 1 << 20  # the kernel's limit (wireguard-go: 1 << 16)

# Configuration: the UAPI socket, its limits, and config files (pywg/_config, pywg/_tools).
UAPI_SOCKET_DIR: Final = "/var/run/wireguard"  # wg(8) looks here: RUNSTATEDIR "/wireguard"
UAPI_SOCKET_DIR_MODE: Final = 0o755
UAPI_SOCKET_UMASK: Final = 0o077  # the socket file is rwx for root only, as wireguard-go's
UAPI_LISTEN_BACKLOG: Final = 4096  # clients that connect faster than they are accepted wait here
UAPI_READ_CHUNK: Final = 65536
# The longest legitimate line is an endpoint with a scoped IPv6 address (under 100 bytes).
UAPI_MAX_LINE_LEN: Final = 1024
UAPI_IDLE_TIMEOUT_S: Final = 10.0  # a connection with no request under way is closed
UAPI_REQUEST_TIMEOUT_S: Final = 10.0  # a request under way must go on arriving within this
UAPI_WRITE_TIMEOUT_S: Final = 10.0  # the client must take each part of a reply within this
UAPI_WRITE_PART: Final = 1 << 20  # bytes of a reply sent at once
UAPI_GET_PEERS_PER_PART: Final = 4096  # a `get` reply is written this many peers at a time
MAX_ALLOWED_IPS: Final = 1 << 21  # per device, all peers together
# A whole configuration in one `set` (wg setconf): every peer's few lines, every allowed IP.
UAPI_MAX_REQUEST_LINES: Final = 8 * MAX_PEERS + MAX_ALLOWED_IPS
IFNAMSIZ: Final = 16  # interface names are at most IFNAMSIZ - 1 bytes
SCOPE_ID_MAX: Final = 0xFFFFFFFF  # an IPv6 scope as a number: sin6_scope_id is a u32
CONF_MAX_FILE_LEN: Final = 64 << 20
CONF_MAX_LINE_LEN: Final = 65536
# wg(8) retries a failing endpoint resolution this many times unless
# WG_ENDPOINT_RESOLUTION_RETRIES says otherwise; the delay grows by 6/5 up to 20 s.
ENDPOINT_RESOLUTION_RETRIES: Final = 15
ENDPOINT_RESOLUTION_DELAY_S: Final = 1.0
ENDPOINT_RESOLUTION_DELAY_MAX_S: Final = 20.0
MTU_MIN: Final = 68  # RFC 791's minimum; wg-quick hands MTU to `ip link` unchecked
MTU_MAX: Final = 65535

# The C data plane's Python-side defaults (pywg/_driver/datapath.py). Its C-only limits (batch
# size, staged-packet pool) are in csrc/messages.h's enum dp_limits.
DATAPLANE_MAX_PEERS: Final = 1024  # peer slots a device starts with
DATAPLANE_EVENT_RING_SIZE: Final = 4096  # events buffered for Python; a power of two
DATAPLANE_EVENTS_PER_READ: Final = 256
DATAPLANE_MAX_CRYPTO_THREADS: Final = 64  # the C side refuses more (DP_MAX_CRYPTO_THREADS)

# The driver (pywg/_driver/device.py, pywg/_driver/bind.py).
BIND_PORT_ATTEMPTS: Final = 10  # random ports tried until IPv4 and IPv6 agree on one
UDP_SOCKET_BUFFER_BYTES: Final = 7 << 20  # as wireguard-go: absorbs a batch's burst
DEVICE_MAX_PEERS: Final = MAX_PEERS  # data-plane peer slots, as the kernel allows
DEVICE_TICK_MAX_NS: Final = 250 * NSEC_PER_MSEC  # how often peers whose facts moved are seen
# Peers evaluated per turn of the event loop, whether their facts moved or a deadline came:
# a gateway's million peers are seen in slices, so UAPI requests and handshakes are served
# between them. One evaluation takes a few microseconds, or a few hundred when it makes an
# initiation: a slice ends at whichever bound comes first.
DEVICE_TIMER_SLICE: Final = 2048
DEVICE_TIMER_SLICE_NS: Final = 5 * NSEC_PER_MSEC
# Handshake messages waiting in the event ring are handled this many at a time through
# HandshakeCore.receive_batch, whose Noise work spreads over every core: enough to keep the
# crypto pool busy, few enough (about 0.2 ms of CPU each) to fit in one slice.
DEVICE_HANDSHAKE_BATCH: Final = 32
EVENT_LOOP_RESOLUTION_NS: Final = NSEC_PER_MSEC  # asyncio's and uvloop's timers: 1 ms
LINK_POLL_NS: Final = NSEC_PER_SEC  # how often the TUN's MTU and existence are checked
ROUTE_CHECK_DELAY_S: Final = 0.02  # sticky sources are checked this long after routes change
TUN_TX_QUEUE_LEN: Final = 1000  # packets the kernel queues for our TUN reader

# The UAPI client (pywg/_tools/uapi_client.py): how long a daemon may take to answer, and how much
# of a `get` reply is read (every allowed IP is a line; peers add a dozen each).
UAPI_CLIENT_TIMEOUT_S: Final = 30.0
UAPI_CLIENT_MAX_REPLY_LINES: Final = 2 * MAX_ALLOWED_IPS + 12 * DEVICE_MAX_PEERS

# `pywg up` / `pywg down` (pywg/_tools/quick), the behaviour of wg-quick(8).
QUICK_CONFIG_DIR: Final = "/etc/wireguard"  # a bare interface name means DIR/NAME.conf
QUICK_FIRST_FWMARK_TABLE: Final = 51820  # a full tunnel's table and fwmark: the first free one
QUICK_MTU_OVERHEAD: Final = 80  # outer IPv6 (40) + UDP (8) + WireGuard header and tag (32)
QUICK_FALLBACK_LINK_MTU: Final = 1500  # when no route tells the outer link's MTU
QUICK_NFT_TABLE_PREFIX: Final = "wg-quick-"  # wg-quick's name, so either tool removes it
QUICK_NFT_PRIORITY_RAW: Final = -300  # nftables' NF_IP_PRI_RAW
QUICK_NFT_PRIORITY_MANGLE: Final = -150  # nftables' NF_IP_PRI_MANGLE
QUICK_SRC_VALID_MARK_SYSCTL: Final = "/proc/sys/net/ipv4/conf/all/src_valid_mark"
QUICK_DAEMON_EXIT_WAIT_S: Final = 10.0  # after its link is deleted (it checks once a second)
QUICK_POLL_S: Final = 0.05
# iproute2's routing-table names: built in, then its files (later ones add to earlier).
QUICK_RT_TABLES_BUILTIN: Final = (("default", 253), ("main", 254), ("local", 255))
QUICK_RT_TABLES_FILES: Final = ("/usr/share/iproute2/rt_tables", "/etc/iproute2/rt_tables")
QUICK_RT_TABLES_DIRS: Final = ("/usr/share/iproute2/rt_tables.d", "/etc/iproute2/rt_tables.d")
QUICK_RESOLVCONF_ORDER: Final = "/etc/resolvconf/interface-order"
QUICK_RESOLVCONF_RUN_DIR: Final = "/etc/resolvconf/run/interface"
QUICK_SYSTEM_FILE_MAX_LEN: Final = 1 << 20  # how much of rt_tables or a resolvconf file is read

# Netlink values (linux/rtnetlink.h, linux/fib_rules.h) as `ip` sends them, so that what
# `pywg up` adds is what `ip route add` / `ip rule add` would have added.
RT_TABLE_MAIN: Final = 254
RTPROT_BOOT: Final = 3  # `ip route add` without `proto`
RT_SCOPE_UNIVERSE: Final = 0
RT_SCOPE_LINK: Final = 253  # `ip -4 route add PREFIX dev X` without a gateway
FIB_RULE_INVERT: Final = 0x2  # `ip rule add not ...`
FRA_SUPPRESS_PREFIXLEN_UNSET: Final = 0xFFFFFFFF  # the kernel reports "no suppress_prefixlength"

# Operating a gateway: metrics (pywg/_driver/metrics.py), `pywg status` (pywg/_tools/status),
# systemd (pywg/_driver/sd_notify.py), friendly names (pywg/_config/names.py).
NAME_MAX_LEN: Final = 64  # a friendly name from a `# Name = ...` comment, cleaned, at most
METRICS_DEFAULT_HOST: Final = "127.0.0.1"  # `--metrics PORT` listens here
METRICS_READ_TIMEOUT_S: Final = 10.0  # a scrape waits this long for the event loop's reading
# The loop reads this many peers for a scrape in one callback (1-2 ms of its CPU time),
# then lets everything else due have its turn before the next slice.
METRICS_READ_SLICE_PEERS: Final = 1024
METRICS_MIN_READ_INTERVAL_S: Final = 1.0  # scrapes closer together share one reading
# A per-peer family is written and compressed in parts of this many lines (about 1 MB), so
# that gzip runs on other threads while the next part is written.
METRICS_PART_PEERS: Final = 8192
METRICS_GZIP_LEVEL: Final = 1  # zlib's fastest: 54 MB of text for 100,000 peers, 3.5 to 1
METRICS_GZIP_THREADS: Final = 2  # threads that deflate those parts (no more than the cores)
METRICS_MAX_CONCURRENT: Final = 4  # scrapes served at once; more are refused (503)
METRICS_REQUEST_TIMEOUT_S: Final = 10.0  # a client must send its request within this
# Handshake ages (seconds) the `wireguard_peer_handshake_age_seconds` histogram counts in:
# 180 s is REJECT_AFTER_TIME (a live session rekeys before it), 540 s wipes the keys.
METRICS_HANDSHAKE_AGE_BUCKETS: Final = (30.0, 60.0, 120.0, 180.0, 300.0, 540.0, 900.0, 1800.0,
                                        3600.0, 21600.0, 86400.0)
STATUS_ONLINE_S: Final = 180  # a handshake this recent: the session's keys are valid (online)
STATUS_STALE_S: Final = 540  # until the keys are wiped (3 x REJECT_AFTER_TIME): stale
STATUS_DEFAULT_INTERVAL_S: Final = 1.0  # between the two readings that make a rate
STATUS_HISTORY_LEN: Final = 120  # rate samples kept per peer for the web page's sparklines
STATUS_HISTORY_MAX_PEERS: Final = 4096  # peers whose history the web page keeps
STATUS_SERVE_PORT: Final = 9587  # `pywg status --serve` with no port
STATUS_MAX_CONCURRENT: Final = 16  # web requests served at once
SD_WATCHDOG_FRACTION: Final = 0.5  # ping systemd's watchdog at this fraction of WatchdogSec

# The Python API for embedding applications (pywg/_api).
PACKET_TUN_BUFFER_BYTES: Final = 4 << 20  # each end of a TUN-less device's packet socketpair
PACKET_MAX_LEN: Final = 65535  # the largest IP packet the packet interface hands over
API_EVENT_QUEUE_LEN: Final = 4096  # events an `async for` subscriber may fall behind by
API_PORT_MAX: Final = 0xFFFF  # listen_port and endpoint ports (uint16, as the UAPI's)
API_FWMARK_MAX: Final = 0xFFFFFFFF  # fwmark (uint32)
API_KEEPALIVE_MAX_S: Final = 0xFFFF  # persistent_keepalive in seconds (uint16)
