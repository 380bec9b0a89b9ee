/* main.c - runs every C self-test; exit status 0 only if all pass. */
#include "selftest.h"

int selftest_failures;

struct selftest {
    const char *name;
    void (*run)(void);
};

static const struct selftest tests[] = {
    { "replay", selftest_replay },
    { "aead", selftest_aead },
    { "allowedips", selftest_allowedips },
    { "indextable", selftest_indextable },
    { "keypair", selftest_keypair },
    { "checksum", selftest_checksum },
    { "blake2s", selftest_blake2s },
    { "cookie", selftest_cookie },
    { "x25519", selftest_x25519 },
    { "x25519-ifma", selftest_x25519_ifma },
    { "noise", selftest_noise },
};

int main(void)
{
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        int before = selftest_failures;
        tests[i].run();
        printf("selftest %-16s %s\n", tests[i].name, selftest_failures == before ? "ok" : "FAILED");
    }
    return selftest_failures ? 1 : 0;
}
