/*
 * standalone.c - runs a libFuzzer harness without libFuzzer.
 *
 *     standalone SECONDS SEED [FILE...]
 *
 * Each FILE (a corpus, e.g. the one `make fuzz` grows) is fed to
 * LLVMFuzzerTestOneInput once, then random inputs until SECONDS have
 * passed. For builds where libFuzzer's runtime is not at hand: the
 * cross-compiled harness that `make test-embedded` runs on the emulated
 * CPUs. Random rather than coverage-guided, so the inputs are shaped: every
 * length from 0 up (the backends branch on lengths: block and batch
 * boundaries), with bodies now random, now all ones or all zeros (the
 * ciphertexts that stress Poly1305's carries). A failing check in the
 * harness aborts, so any exit status but 0 is a finding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INPUT (41 + 32 + 70000)     /* harness header, associated data, body */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t state;

static uint64_t next_random(void)
{
    /* xorshift64*: reproducible from the seed, not for secrets */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * UINT64_C(0x2545f4914f6cdd1d);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int replay(const char *path, uint8_t *buf)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f) {
        fprintf(stderr, "standalone: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    n = fread(buf, 1, MAX_INPUT, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

/* One shaped input: header bytes random, a length that walks up through
 * the short ones and jumps around the long ones, a body of one kind. */
static size_t shaped(uint8_t *buf, uint64_t i)
{
    size_t body = i % 4 == 3 ? (size_t)(next_random() % 70000) : (size_t)(i / 4 % 1600);
    size_t ad = (size_t)(next_random() % 33);
    size_t size = 41 + ad + body;
    int kind = (int)(next_random() % 4);

    for (size_t j = 0; j < 41 + ad; j++)
        buf[j] = (uint8_t)next_random();
    buf[40] = (uint8_t)ad;
    for (size_t j = 41 + ad; j < size; j++)
        buf[j] = kind == 0 ? 0xff : kind == 1 ? 0 : (uint8_t)next_random();
    return size;
}

int main(int argc, char **argv)
{
    uint8_t *buf;
    double seconds, start;
    uint64_t n = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SECONDS SEED [FILE...]\n", argv[0]);
        return 2;
    }
    seconds = strtod(argv[1], NULL);
    state = strtoull(argv[2], NULL, 0) | 1;
    buf = malloc(MAX_INPUT);
    if (!buf)
        return 1;
    for (int i = 3; i < argc; i++)
        if (replay(argv[i], buf) != 0)
            return 1;
    start = now_s();
    while (now_s() - start < seconds) {
        LLVMFuzzerTestOneInput(buf, shaped(buf, n));
        n++;
    }
    printf("standalone fuzz: %d corpus files, %llu random inputs in %.0f s, seed %s: ok\n",
           argc - 3, (unsigned long long)n, now_s() - start, argv[2]);
    free(buf);
    return 0;
}
