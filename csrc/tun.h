/*
 * tun.h - TUN I/O: every packet that is ready per wake-up (the fd is
 * non-blocking); with IFF_VNET_HDR, super-packets split on reading and
 * coalesced on writing (offload.h).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "queueing.h"

int wg_tun_prepare(int fd);
/* Reads until EAGAIN or a full batch into l->pkts (super-packets split);
 * the count, or -errno if the TUN is gone. *more: a full batch, read again. */
int wg_tun_read(struct wg_dp *dp, struct loop *l, bool *more);
/* One packet, with room for the TUN's headers before pkt; 0, or -errno
 * (counted by the caller). */
int wg_tun_write(struct wg_dp *dp, uint8_t *pkt, uint32_t len);
/* The opened packets l->pkts[l->deliver[0..n-1]], coalesced where allowed;
 * counted as written or dropped. */
void wg_tun_write_batch(struct wg_dp *dp, struct loop *l, unsigned int n);
