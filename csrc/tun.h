/*
 * tun.h - TUN I/O: every packet that is ready per wake-up (the fd is
 * non-blocking), one write per packet; the virtio header stripped and added
 * when the TUN was opened with IFF_VNET_HDR.
 */
#pragma once
#include <stdint.h>

#include "device.h"
#include "queueing.h"

int wg_tun_prepare(int fd);
/* Reads until EAGAIN or a full batch into l->pkts; the count, or -errno if
 * the TUN is gone. */
int wg_tun_read(struct wg_dp *dp, struct loop *l);
/* 0, or -errno (counted by the caller). */
int wg_tun_write(struct wg_dp *dp, uint8_t *pkt, uint32_t len);
