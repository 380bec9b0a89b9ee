/*
 * x25519.c - X25519 through the functions Python registered; see x25519.h.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "x25519.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static wg_x25519_fn scalarmult;
static wg_x25519_base_fn scalarmult_base;

bool wg_x25519_ready(void)
{
    return __atomic_load_n(&scalarmult_base, __ATOMIC_ACQUIRE) != NULL;
}

int wg_x25519_register(wg_x25519_fn mult, wg_x25519_base_fn base)
{
    if (!mult || !base)
        return -EINVAL;
    if (wg_x25519_ready())
        return mult == scalarmult && base == scalarmult_base ? 0 : -EALREADY;
    /* The base function last: ready() reads it, so both are visible once it is. */
    __atomic_store_n(&scalarmult, mult, __ATOMIC_RELEASE);
    __atomic_store_n(&scalarmult_base, base, __ATOMIC_RELEASE);
    return 0;
}

bool wg_x25519_is_zero(const uint8_t *p, size_t len)
{
    const volatile uint8_t *v = p;
    uint8_t acc = 0;

    for (size_t i = 0; i < len; i++)
        acc |= v[i];
    return acc == 0;
}

int wg_x25519(uint8_t out[WG_X25519_LEN], const uint8_t secret[WG_X25519_LEN],
              const uint8_t public_key[WG_X25519_LEN])
{
    int failed;

    if (!wg_x25519_ready())
        return -ENODEV;
    /* libsodium refuses small-order points itself; the zero test covers any other
     * implementation registered here, as the kernel's curve25519() caller does. */
    failed = scalarmult(out, secret, public_key) != 0;
    if (failed | wg_x25519_is_zero(out, WG_X25519_LEN)) {
        explicit_bzero(out, WG_X25519_LEN);
        return -EINVAL;
    }
    return 0;
}

int wg_x25519_base(uint8_t out[WG_X25519_LEN], const uint8_t secret[WG_X25519_LEN])
{
    if (!wg_x25519_ready())
        return -ENODEV;
    return scalarmult_base(out, secret) == 0 ? 0 : -EINVAL;
}
