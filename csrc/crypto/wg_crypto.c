/*
 * wg_crypto.c - setting up pywg._crypto: the functions borrowed from
 * libsodium, the AEAD backend, the pool's threads; see wg_crypto.h.
 */
#include "wg_crypto.h"

#include <errno.h>

#include "../wg_dp.h"                   /* wg_aead_register_sodium, wg_aead_init */
#include "../wg_dp_test.h"              /* wg_aead_backends, wg_aead_select */
#include "workers.h"
#include "x25519.h"

/* PYWG_AEAD names the data plane's backend, for experiments; if it names one that
 * cannot run here, the data plane refuses to start and says so, but the handshake (and
 * with it `import pywg`) goes on with the first backend that passes its self-test. */
static int select_any(void)
{
    const char *names[16];
    int n = wg_aead_backends(names, sizeof(names) / sizeof(names[0]));

    for (int i = 0; i < n && i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (wg_aead_select(names[i]) == 0)
            return 0;
    return -ENODEV;
}

int wg_crypto_init(void *scalarmult, void *scalarmult_base, void *aead_encrypt,
                   void *aead_decrypt)
{
    int rc = wg_x25519_register((wg_x25519_fn)scalarmult, (wg_x25519_base_fn)scalarmult_base);

    if (rc == 0 && (aead_encrypt || aead_decrypt))
        rc = wg_aead_register_sodium(aead_encrypt, aead_decrypt);
    if (rc == 0 && wg_aead_init() != 0)
        rc = select_any();
    return rc;
}

unsigned int wg_crypto_workers(void)
{
    return wg_workers_count();
}

const char *wg_crypto_x25519_engine(void)
{
    return wg_x25519_engine();
}

void wg_crypto_stop(void)
{
    wg_workers_stop();
}
