/*
 * wg_crypto.h - the handshake's cryptography: the C/Python boundary of the
 * cffi module pywg._crypto, and its cdef. Only pywg/_protocol/crypto.py
 * imports that module; it calls everything declared here, and nothing else
 * is here (tests/unit/test_csrc_layers.py checks).
 *
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard runs it (the kernel's
 * noise.c), one call per message step, the rules around them (state, peer
 * lookup, replay, flood) staying in Python. The symmetric state travels as
 * one 64-byte chain, the chaining key then the hash. A step reads `chain`
 * and writes the state after it to `chain_out` (which may be the same
 * buffer), with its other outputs, only if it succeeds; on failure every
 * output is zeroed. Steps wipe the secrets they held on the stack.
 *
 * Results: 0; -EBADMSG if an AEAD tag did not verify; -EINVAL if an X25519
 * result was all zero (a public key of small order, or a static-static
 * secret that is zero); -ENODEV before wg_crypto_init() succeeded.
 *
 * The batch steps (plural names) do the same over n messages, message i's
 * result in rcs[i], on a pool of threads, one per usable core, the caller's
 * included (csrc/crypto/workers.c); they return 0 or -errno for the call.
 * cffi releases the GIL during every call, so other Python threads run.
 * Message i of an input array starts at `stride * i`; outputs are dense.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define WG_NOISE_CHAIN_LEN 64           /* chaining key || hash */
#define WG_NOISE_KEY_LEN 32             /* X25519 keys, symmetric keys, hashes */
#define WG_NOISE_TAG_LEN 16

/* Hands over libsodium's crypto_scalarmult and crypto_scalarmult_base, and
 * (optionally, NULL: not) crypto_aead_chacha20poly1305_ietf_encrypt and
 * _decrypt as one more AEAD backend, then selects the AEAD backend
 * (csrc/crypto/aead.h: the fastest that passes its self-test, or the one
 * PYWG_AEAD names if that one can run). Once per process; the same
 * functions again are fine. */
int wg_crypto_init(void *scalarmult, void *scalarmult_base, void *aead_encrypt,
                   void *aead_decrypt);
/* Threads a batch may use, the caller's included. */
unsigned int wg_crypto_workers(void);
/* What computes the batches' X25519: "ifma" (eight at a time, AVX-512 IFMA,
 * checked against libsodium at init) or "sodium" (one at a time); PYWG_X25519=sodium
 * asks for the latter. */
const char *wg_crypto_x25519_engine(void);
/* Joins the pool's threads (at exit; the next batch would start them again). */
void wg_crypto_stop(void);

/* ---- one message step --------------------------------------------------- */

/* Initiator, message 1 (-> e, es, s, ss, payload), from the chain before the
 * pre-message (which mixes remote_static, the responder's key). message gets
 * e (32), the encrypted static (48), the encrypted payload (payload_len + 16). */
int wg_noise_write_initiation(uint8_t *chain_out, uint8_t *message, const uint8_t *chain,
                              const uint8_t *ephemeral_private,
                              const uint8_t *local_static_public, const uint8_t *remote_static,
                              const uint8_t *static_static, const uint8_t *payload,
                              size_t payload_len);
/* Responder, message 1, first half (e, es, s): the initiator's static key.
 * message starts with e (32) and the encrypted static (48). */
int wg_noise_read_initiation_static(uint8_t *chain_out, uint8_t *remote_static,
                                    const uint8_t *chain, const uint8_t *local_static_private,
                                    const uint8_t *local_static_public, const uint8_t *message);
/* Second half (ss, payload): encrypted_len - 16 bytes of payload. */
int wg_noise_read_initiation_payload(uint8_t *chain_out, uint8_t *payload, const uint8_t *chain,
                                     const uint8_t *static_static, const uint8_t *encrypted,
                                     size_t encrypted_len);
/* Responder, message 2 (<- e, ee, se, psk, payload): message gets e (32) and
 * the encrypted payload (payload_len + 16). */
int wg_noise_write_response(uint8_t *chain_out, uint8_t *message, const uint8_t *chain,
                            const uint8_t *ephemeral_private, const uint8_t *remote_ephemeral,
                            const uint8_t *remote_static, const uint8_t *preshared_key,
                            const uint8_t *payload, size_t payload_len);
/* Initiator, message 2: message is e (32) then encrypted_len bytes. */
int wg_noise_read_response(uint8_t *chain_out, uint8_t *payload, const uint8_t *chain,
                           const uint8_t *ephemeral_private, const uint8_t *local_static_private,
                           const uint8_t *preshared_key, const uint8_t *message,
                           size_t encrypted_len);
/* Split: keys gets the initiator-to-responder key, then the other (64). */
int wg_noise_split(uint8_t *keys, const uint8_t *chain);

/* ---- batches: what a responder does per initiation ------------------------ */

/* X25519(private_key, public_keys[i]) into secrets (32 each): static-static
 * secrets, computed at a peer's first handshake. */
int wg_noise_static_statics(size_t n, uint8_t *secrets, int *rcs, const uint8_t *private_key,
                            const uint8_t *public_keys);
/* wg_noise_read_initiation_static over n messages: chains_out and
 * remote_statics get 64 and 32 bytes each. */
int wg_noise_read_initiations_static(size_t n, uint8_t *chains_out, uint8_t *remote_statics,
                                     int *rcs, const uint8_t *chain,
                                     const uint8_t *local_static_private,
                                     const uint8_t *local_static_public,
                                     const uint8_t *messages, size_t stride);
/* wg_noise_read_initiation_payload over n: chains and static_statics are
 * dense (64 and 32 each), payloads gets encrypted_len - 16 each. */
int wg_noise_read_initiations_payload(size_t n, uint8_t *chains_out, uint8_t *payloads, int *rcs,
                                      const uint8_t *chains, const uint8_t *static_statics,
                                      const uint8_t *encrypted, size_t stride,
                                      size_t encrypted_len);
/* wg_noise_write_response with an empty payload, then split, over n: every
 * input is dense (chains 64, the others 32 each); messages gets e and the
 * encrypted nothing (48 each), keys the two session keys (64 each, the
 * initiator-to-responder key first). The chains end here: nothing is
 * written back. */
int wg_noise_write_responses(size_t n, uint8_t *messages, uint8_t *keys, int *rcs,
                             const uint8_t *chains, const uint8_t *ephemeral_privates,
                             const uint8_t *remote_ephemerals, const uint8_t *remote_statics,
                             const uint8_t *preshared_keys);
