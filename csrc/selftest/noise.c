/*
 * noise.c - the handshake's message steps (csrc/crypto/noise.c): the KDF
 * against wireguard-go's vectors, WireGuard's initial chain, the cacophony
 * Noise_IKpsk2 vector from both sides byte for byte, the failures (forged
 * static, wrong psk, small-order keys: outputs zeroed), whole handshakes
 * both ways with and without a psk, and the batches against the single
 * steps on a mix of good and bad messages, on the pool's threads, stopped
 * and started again. X25519 is the reference in x25519.c (registered there).
 */
#include <errno.h>
#include <string.h>

#include "../crypto/aead.h"
#include "../crypto/blake2s.h"
#include "../crypto/noise.h"
#include "../crypto/workers.h"
#include "../crypto/x25519.h"
#include "selftest.h"

#define KEY WG_NOISE_KEY_LEN
#define CHAIN WG_NOISE_CHAIN_LEN

static void kdf_vectors(void)
{
    /* wireguard-go device/kdf_test.go: key, input, t0, t1, t2 */
    static const char *cases[][5] = {
        { "746573742d6b6579", "746573742d696e707574",
          "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
          "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
          "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24" },
        { "776972656775617264", "776972656775617264",
          "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
          "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
          "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160" },
        { "", "",
          "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
          "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
          "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[16], in[16], want[3][KEY], t[3][KEY], only[KEY];
        size_t key_len = selftest_unhex(key, sizeof(key), cases[i][0]);
        size_t in_len = selftest_unhex(in, sizeof(in), cases[i][1]);

        for (int j = 0; j < 3; j++)
            selftest_unhex(want[j], KEY, cases[i][2 + j]);
        wg_noise_kdf(t[0], t[1], t[2], key, key_len, in, in_len);
        CHECK(memcmp(t, want, sizeof(t)) == 0, "KDF3 vector %zu", i);
        wg_noise_kdf(only, NULL, NULL, key, key_len, in, in_len);
        CHECK(memcmp(only, want[0], KEY) == 0, "KDF1 vector %zu", i);
    }
}

/* Ci0 = HASH(CONSTRUCTION), Hi0 = HASH(Ci0 || IDENTIFIER); wireguard-go's values. */
static void wireguard_chain(uint8_t chain[CHAIN])
{
    static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
    struct blake2s_state s;

    wg_blake2s(chain, KEY, (const uint8_t *)construction, strlen(construction), NULL, 0);
    wg_blake2s_init(&s, KEY, NULL, 0);
    wg_blake2s_update(&s, chain, KEY);
    wg_blake2s_update(&s, (const uint8_t *)identifier, strlen(identifier));
    wg_blake2s_final(&s, chain + KEY);
}

static void initial_chain(void)
{
    uint8_t chain[CHAIN], want[CHAIN];

    selftest_unhex(want, KEY, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
    selftest_unhex(want + KEY, KEY,
                   "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
    wireguard_chain(chain);
    CHECK(memcmp(chain, want, CHAIN) == 0, "WireGuard's initial chaining key and hash");
}

/* cacophony's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s vector (tests/data). */
static const char *const V_PROLOGUE = "4a6f686e2047616c74";
static const char *const V_PSK = "54686973206973206d7920417573747269616e20706572737065637469766521";
static const char *const V_INIT_STATIC =
    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
static const char *const V_INIT_EPHEMERAL =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
static const char *const V_RESP_STATIC =
    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
static const char *const V_RESP_EPHEMERAL =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
static const char *const V_HASH =
    "f5191b875290abcd41347ac3622d9679688a7e980229cb937ef748336cfde0e5";
static const char *const V_PAYLOAD0 = "4c756477696720766f6e204d69736573";
static const char *const V_MESSAGE0 =
    "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944001e21de9f98ddd8e2ad57527207"
    "feb56253c9c94a9e496782ecfcb2a75fbcaf1b52948cc48daefe660c62119ab5000980c84831215f2441eba61654"
    "8e832985464cf17e51ee93109008399a21f7e13f";
static const char *const V_PAYLOAD1 = "4d757272617920526f746862617264";
static const char *const V_MESSAGE1 =
    "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843cb765f2caef0751b8f007572dab0"
    "322217755c0632f365717edbf34d33e87a";
/* The first transport messages, each direction's nonce 0. */
static const char *const V_PAYLOAD2 = "462e20412e20486179656b";
static const char *const V_MESSAGE2 = "8153ca9833bc3c1b91a7e66e5f4d4f5b59bf9e64c2f20d15f0bba7";
static const char *const V_PAYLOAD3 = "4361726c204d656e676572";
static const char *const V_MESSAGE3 = "07af0c9c86e1b4e80f36b04ff7688d51141af3debd0332f0a705ef";

static void vector_chain(uint8_t chain[CHAIN])
{
    static const char name[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    uint8_t prologue[16];
    size_t prologue_len = selftest_unhex(prologue, sizeof(prologue), V_PROLOGUE);
    struct blake2s_state s;

    wg_blake2s(chain, KEY, (const uint8_t *)name, strlen(name), NULL, 0);
    wg_blake2s_init(&s, KEY, NULL, 0);
    wg_blake2s_update(&s, chain, KEY);
    wg_blake2s_update(&s, prologue, prologue_len);
    wg_blake2s_final(&s, chain + KEY);
}

static void transport(const uint8_t key[KEY], const char *payload_hex, const char *message_hex,
                      const char *what)
{
    uint8_t payload[32], message[64], sealed[64];
    size_t len = selftest_unhex(payload, sizeof(payload), payload_hex);

    selftest_unhex(message, sizeof(message), message_hex);
    wg_aead->seal(sealed, payload, len, NULL, 0, 0, key);
    CHECK(memcmp(sealed, message, len + WG_NOISE_TAG_LEN) == 0, "%s", what);
}

static void noise_vector(void)
{
    uint8_t chain0[CHAIN], ci[CHAIN], cr[CHAIN], i_static[KEY], i_public[KEY], i_eph[KEY];
    uint8_t r_static[KEY], r_public[KEY], r_eph[KEY], psk[KEY], ss[KEY], remote[KEY];
    uint8_t payload0[16], payload1[16], message0[112], message1[64], out[112], got[16];
    uint8_t hash[KEY], keys_i[2 * KEY], keys_r[2 * KEY];
    size_t len0 = selftest_unhex(payload0, sizeof(payload0), V_PAYLOAD0);
    size_t len1 = selftest_unhex(payload1, sizeof(payload1), V_PAYLOAD1);

    vector_chain(chain0);
    selftest_unhex(i_static, KEY, V_INIT_STATIC);
    selftest_unhex(i_eph, KEY, V_INIT_EPHEMERAL);
    selftest_unhex(r_static, KEY, V_RESP_STATIC);
    selftest_unhex(r_eph, KEY, V_RESP_EPHEMERAL);
    selftest_unhex(psk, KEY, V_PSK);
    selftest_unhex(hash, KEY, V_HASH);
    selftest_unhex(message0, sizeof(message0), V_MESSAGE0);
    selftest_unhex(message1, sizeof(message1), V_MESSAGE1);
    wg_x25519_base(i_public, i_static);
    wg_x25519_base(r_public, r_static);
    wg_x25519(ss, i_static, r_public);

    /* Initiator: message 0 byte for byte. */
    CHECK(wg_noise_write_initiation(ci, out, chain0, i_eph, i_public, r_public, ss, payload0,
                                    len0) == 0 && memcmp(out, message0, 80 + len0 + 16) == 0,
          "vector: write_initiation");
    /* Responder: its static, its payload, the same chain; then message 1. */
    CHECK(wg_noise_read_initiation_static(cr, remote, chain0, r_static, r_public, message0) == 0 &&
          memcmp(remote, i_public, KEY) == 0, "vector: read_initiation_static");
    CHECK(wg_noise_read_initiation_payload(cr, got, cr, ss, message0 + 80, len0 + 16) == 0 &&
          memcmp(got, payload0, len0) == 0 && memcmp(cr, ci, CHAIN) == 0,
          "vector: read_initiation_payload");
    CHECK(wg_noise_write_response(cr, out, cr, r_eph, message0, remote, psk, payload1, len1) == 0
          && memcmp(out, message1, KEY + len1 + 16) == 0 && memcmp(cr + KEY, hash, KEY) == 0,
          "vector: write_response, handshake hash");
    /* Initiator: message 1, the same hash. */
    CHECK(wg_noise_read_response(ci, got, ci, i_eph, i_static, psk, message1, len1 + 16) == 0 &&
          memcmp(got, payload1, len1) == 0 && memcmp(ci, cr, CHAIN) == 0,
          "vector: read_response");
    /* Split: the transport messages. */
    wg_noise_split(keys_i, ci);
    wg_noise_split(keys_r, cr);
    CHECK(memcmp(keys_i, keys_r, sizeof(keys_i)) == 0, "vector: both split alike");
    transport(keys_i, V_PAYLOAD2, V_MESSAGE2, "vector: initiator's first transport message");
    transport(keys_i + KEY, V_PAYLOAD3, V_MESSAGE3, "vector: responder's first transport message");
}

/* A small deterministic generator for keys (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static void random_bytes(uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        out[i] = (uint8_t)((rng_state * 0x2545f4914f6cdd1dU) >> 56);
    }
}

static bool zero(const uint8_t *p, size_t len)
{
    return wg_x25519_is_zero(p, len);
}

static void failures(void)
{
    static const uint8_t low_order[KEY] = { 1 };
    uint8_t chain[CHAIN], c[CHAIN], i_static[KEY], i_public[KEY], r_static[KEY], r_public[KEY];
    uint8_t eph[KEY], ss[KEY], psk[KEY] = { 0 }, wrong_psk[KEY] = { 7 }, message[108];
    uint8_t remote[KEY], stamp[12] = { 0 }, response[48], got[12];
    uint8_t ci[CHAIN], cr[CHAIN], r_eph[KEY];

    wireguard_chain(chain);
    random_bytes(i_static, KEY);
    random_bytes(r_static, KEY);
    random_bytes(eph, KEY);
    random_bytes(r_eph, KEY);
    wg_x25519_base(i_public, i_static);
    wg_x25519_base(r_public, r_static);
    wg_x25519(ss, i_static, r_public);
    CHECK(wg_noise_write_initiation(ci, message, chain, eph, i_public, r_public, ss, stamp, 12)
          == 0, "initiation");

    /* A flipped bit in the encrypted static: refused, outputs zeroed. */
    message[KEY + 3] ^= 0x10;
    memset(c, 0xa5, sizeof(c));
    memset(remote, 0xa5, sizeof(remote));
    CHECK(wg_noise_read_initiation_static(c, remote, chain, r_static, r_public, message) ==
          -EBADMSG && zero(c, CHAIN) && zero(remote, KEY), "forged static refused, zeroed");
    message[KEY + 3] ^= 0x10;
    /* A small-order ephemeral key: an all-zero DH. */
    memcpy(c, message, KEY);
    memcpy(message, low_order, KEY);
    CHECK(wg_noise_read_initiation_static(cr, remote, chain, r_static, r_public, message) ==
          -EINVAL && zero(cr, CHAIN), "small-order ephemeral refused");
    memcpy(message, c, KEY);
    CHECK(wg_noise_read_initiation_static(cr, remote, chain, r_static, r_public, message) == 0,
          "the untouched message reads");
    /* A zero static-static secret (the peer's key is of small order). */
    memset(c, 0xa5, sizeof(c));
    CHECK(wg_noise_read_initiation_payload(c, got, cr, (const uint8_t[KEY]){ 0 }, message + 80,
                                           28) == -EINVAL && zero(c, CHAIN),
          "zero static-static secret refused");
    CHECK(wg_noise_write_initiation(c, message, chain, eph, i_public, r_public,
                                    (const uint8_t[KEY]){ 0 }, stamp, 12) == -EINVAL &&
          zero(message, sizeof(message)), "no initiation to a small-order key");
    /* Mismatched psks: the initiator refuses the response. */
    CHECK(wg_noise_write_initiation(ci, message, chain, eph, i_public, r_public, ss, stamp, 12)
          == 0, "initiation again");
    CHECK(wg_noise_read_initiation_static(cr, remote, chain, r_static, r_public, message) == 0 &&
          wg_noise_read_initiation_payload(cr, got, cr, ss, message + 80, 28) == 0 &&
          wg_noise_write_response(cr, response, cr, r_eph, message, remote, wrong_psk, NULL, 0)
          == 0, "a response with another psk");
    memset(c, 0xa5, sizeof(c));
    CHECK(wg_noise_read_response(c, got, ci, eph, i_static, psk, response, 16) == -EBADMSG &&
          zero(c, CHAIN), "the initiator refuses it");
    CHECK(wg_noise_read_response(c, got, ci, eph, i_static, wrong_psk, response, 16) == 0,
          "with the same psk it reads");
    /* Short input: nothing to open. */
    CHECK(wg_noise_read_initiation_payload(c, got, cr, ss, message + 80, 15) == -EBADMSG,
          "shorter than a tag");
}

/* A whole WireGuard handshake with the single steps; the two sides' keys. */
static bool handshake(const uint8_t i_static[KEY], const uint8_t r_static[KEY],
                      const uint8_t psk[KEY], uint8_t keys_i[2 * KEY], uint8_t keys_r[2 * KEY])
{
    uint8_t chain[CHAIN], ci[CHAIN], cr[CHAIN], i_public[KEY], r_public[KEY], ss[KEY];
    uint8_t i_eph[KEY], r_eph[KEY], remote[KEY], message[108], response[48], stamp[12], got[12];
    bool ok;

    wireguard_chain(chain);
    random_bytes(i_eph, KEY);
    random_bytes(r_eph, KEY);
    random_bytes(stamp, sizeof(stamp));
    wg_x25519_base(i_public, i_static);
    wg_x25519_base(r_public, r_static);
    ok = wg_x25519(ss, i_static, r_public) == 0 &&
         wg_noise_write_initiation(ci, message, chain, i_eph, i_public, r_public, ss, stamp, 12)
             == 0 &&
         wg_noise_read_initiation_static(cr, remote, chain, r_static, r_public, message) == 0 &&
         memcmp(remote, i_public, KEY) == 0 &&
         wg_noise_read_initiation_payload(cr, got, cr, ss, message + 80, 28) == 0 &&
         memcmp(got, stamp, sizeof(stamp)) == 0 &&
         wg_noise_write_response(cr, response, cr, r_eph, message, remote, psk, NULL, 0) == 0 &&
         wg_noise_read_response(ci, got, ci, i_eph, i_static, psk, response, 16) == 0;
    wg_noise_split(keys_i, ci);
    wg_noise_split(keys_r, cr);
    return ok;
}

static void handshakes(void)
{
    uint8_t a[KEY], b[KEY], psk[KEY] = { 0 }, keys_i[2 * KEY], keys_r[2 * KEY];

    random_bytes(a, KEY);
    random_bytes(b, KEY);
    for (int with_psk = 0; with_psk < 2; with_psk++) {
        if (with_psk)
            random_bytes(psk, KEY);
        CHECK(handshake(a, b, psk, keys_i, keys_r) && memcmp(keys_i, keys_r, 2 * KEY) == 0 &&
              memcmp(keys_i, keys_i + KEY, KEY) != 0, "a to b, psk %d", with_psk);
        CHECK(handshake(b, a, psk, keys_i, keys_r) && memcmp(keys_i, keys_r, 2 * KEY) == 0,
              "b to a, psk %d", with_psk);
    }
}

#define N 9
#define BODY 108                        /* e, encrypted static, encrypted timestamp */

/* The responder's batches against its single steps, for N initiations of
 * which one has a forged static, one a small-order ephemeral key, and two
 * come from the same initiator. */
static void batches_once(void)
{
    static uint8_t statics[N][KEY], publics[N][KEY], bodies[N][BODY], stamps[N][12];
    static uint8_t chains1[N][CHAIN], remotes[N][KEY], chains2[N][CHAIN], payloads[N][12];
    static uint8_t secrets[N][KEY], ephs[N][KEY], r_ephs[N][KEY], psks[N][KEY];
    static uint8_t responses[N][48], keys[N][2 * KEY], remote_ephs[N][KEY];
    uint8_t chain[CHAIN], r_static[KEY], r_public[KEY], c1[CHAIN], c2[CHAIN], remote[KEY];
    uint8_t got[12], response[48], key_pair[2 * KEY], ci[CHAIN], ss[KEY];
    int rcs[N], want;

    wireguard_chain(chain);
    random_bytes(r_static, KEY);
    wg_x25519_base(r_public, r_static);
    for (int i = 0; i < N; i++) {
        if (i == 5) {
            memcpy(statics[i], statics[2], KEY);       /* the same initiator again */
        } else {
            random_bytes(statics[i], KEY);
        }
        wg_x25519_base(publics[i], statics[i]);
        wg_x25519(ss, statics[i], r_public);
        random_bytes(ephs[i], KEY);
        random_bytes(stamps[i], 12);
        random_bytes(r_ephs[i], KEY);
        random_bytes(psks[i], KEY);
        wg_noise_write_initiation(ci, bodies[i], chain, ephs[i], publics[i], r_public, ss,
                                  stamps[i], 12);
    }
    bodies[3][KEY + 9] ^= 1;                            /* a forged static */
    memset(bodies[7], 0, KEY);                          /* a small-order ephemeral */

    CHECK(wg_noise_read_initiations_static(N, chains1[0], remotes[0], rcs, chain, r_static,
                                           r_public, bodies[0], BODY) == 0, "batch 1");
    for (int i = 0; i < N; i++) {
        want = wg_noise_read_initiation_static(c1, remote, chain, r_static, r_public, bodies[i]);
        CHECK(rcs[i] == want && memcmp(c1, chains1[i], CHAIN) == 0 &&
              memcmp(remote, remotes[i], KEY) == 0, "batch 1 item %d as alone", i);
        CHECK((i == 3 ? -EBADMSG : i == 7 ? -EINVAL : 0) == rcs[i], "batch 1 item %d: %d", i,
              rcs[i]);
    }
    CHECK(wg_noise_static_statics(N, secrets[0], rcs, r_static, remotes[0]) == 0, "secrets");
    for (int i = 0; i < N; i++) {
        want = i == 3 || i == 7 ? -EINVAL : 0;          /* their "keys" are zero */
        CHECK(rcs[i] == want, "secret %d", i);
    }
    CHECK(wg_noise_read_initiations_payload(N, chains2[0], payloads[0], rcs, chains1[0],
                                            secrets[0], bodies[0] + 80, BODY, 28) == 0,
          "batch 2");
    for (int i = 0; i < N; i++) {
        want = wg_noise_read_initiation_payload(c2, got, chains1[i], secrets[i], bodies[i] + 80,
                                                28);
        CHECK(rcs[i] == want && memcmp(c2, chains2[i], CHAIN) == 0 &&
              memcmp(got, payloads[i], 12) == 0, "batch 2 item %d as alone", i);
        CHECK((i == 3 || i == 7) == (rcs[i] != 0) &&
              (rcs[i] != 0 || memcmp(payloads[i], stamps[i], 12) == 0), "batch 2 item %d", i);
    }
    for (int i = 0; i < N; i++)
        memcpy(remote_ephs[i], bodies[i], KEY);
    CHECK(wg_noise_write_responses(N, responses[0], keys[0], rcs, chains2[0], r_ephs[0],
                                   remote_ephs[0], remotes[0], psks[0]) == 0, "batch 3");
    for (int i = 0; i < N; i++) {
        want = wg_noise_write_response(c1, response, chains2[i], r_ephs[i], bodies[i], remotes[i],
                                       psks[i], NULL, 0);
        if (want == 0)
            wg_noise_split(key_pair, c1);
        else
            memset(key_pair, 0, sizeof(key_pair));
        CHECK(rcs[i] == want && memcmp(response, responses[i], 48) == 0 &&
              memcmp(key_pair, keys[i], sizeof(key_pair)) == 0, "batch 3 item %d as alone", i);
    }
    /* The batch's sessions work: the initiators read the responses, and agree. */
    for (int i = 0; i < N; i++) {
        if (i == 3 || i == 7)
            continue;
        wg_x25519(ss, statics[i], r_public);
        wg_noise_write_initiation(ci, bodies[i], chain, ephs[i], publics[i], r_public, ss,
                                  stamps[i], 12);
        CHECK(wg_noise_read_response(ci, got, ci, ephs[i], statics[i], psks[i], responses[i],
                                     16) == 0, "initiator %d reads its response", i);
        wg_noise_split(key_pair, ci);
        CHECK(memcmp(key_pair, keys[i], sizeof(key_pair)) == 0, "initiator %d's keys", i);
    }
}

static void batches(void)
{
    batches_once();
    batches_once();                     /* the same threads again */
    wg_workers_stop();
    batches_once();                     /* started again */
    wg_workers_stop();
    wg_workers_stop();                  /* idempotent */
}

void selftest_noise(void)
{
    /* x25519.c registered the reference X25519 (it runs first). */
    CHECK(wg_x25519_ready() && wg_aead != NULL, "handshake crypto initialised");
    if (!wg_x25519_ready() || !wg_aead)
        return;
    kdf_vectors();
    initial_chain();
    noise_vector();
    failures();
    handshakes();
    batches();
}
