/*
 * checksum.h - the Internet checksum (RFC 1071) for packets the data plane
 * builds or cuts up: ICMP replies, the segments of TUN super-packets, the
 * pseudo-header sums of the super-packets it writes back.
 *
 * Sums are 32-bit and unfolded, in network byte order, so that partial sums
 * of pieces that start at even offsets add up; wg_csum_fold ends one.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* sum plus the 16-bit big-endian words of p (a last odd byte is padded). */
uint32_t wg_csum_add(uint32_t sum, const uint8_t *p, size_t len);
/* The same over src while copying it to dst (they must not overlap). */
uint32_t wg_csum_copy(uint32_t sum, uint8_t *dst, const uint8_t *src, size_t len);
/* Folded to 16 bits and complemented: the value for the checksum field. */
uint16_t wg_csum_fold(uint32_t sum);
/* Folded to 16 bits, not complemented: what a virtio header's NEEDS_CSUM
 * leaves in the checksum field for the kernel to finish. */
uint16_t wg_csum_fold_partial(uint32_t sum);
/* The TCP/UDP pseudo-header of an IPv4 (family 4) or IPv6 packet: its
 * addresses, the protocol and the transport length. */
uint32_t wg_csum_pseudo(const uint8_t *ip, int family, uint8_t proto, uint32_t l4_len);
