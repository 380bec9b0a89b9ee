/*
 * replay_main.c - runs a fuzz driver over saved inputs without libFuzzer:
 * `make fuzz-regress` links it with each driver (any C compiler, ASan and
 * UBSan) and runs it over the target's kept corpus and crash inputs, so they
 * are regression tests that need no clang.
 *
 * Usage: DRIVER FILE-OR-DIRECTORY...; each file is one input. Exit status 0
 * if every input ran (a failed check aborts, naming the input first).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long ran;
static const char *current;

/* A failed check aborts, a sanitizer report ends the process: either way,
 * say which input it was. */
static void name_input(void)
{
    if (current)
        fprintf(stderr, "replay: failed on %s\n", current);
}

static void on_abort(int sig)
{
    name_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* From the sanitizer runtime, when there is one. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;

    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            uint8_t *more = realloc(buf, cap ? 2 * cap : 4096);
            if (!more) {
                fclose(f);
                free(buf);
                return -1;
            }
            buf = more;
            cap = cap ? 2 * cap : 4096;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    current = path;
    /* A copy of exactly the input's size, so reading past it is caught. */
    {
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
            free(buf);
            return -1;
        }
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    ran++;
    return 0;
}

static int run_path(const char *path)
{
    struct stat st;
    struct dirent **entries;
    int n, ret = 0;

    if (stat(path, &st) != 0) {
        /* A target without kept inputs of this kind: nothing to run. */
        return errno == ENOENT ? 0 : -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    n = scandir(path, &entries, NULL, alphasort);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char *child;
        if (entries[i]->d_name[0] != '.' && ret == 0 &&
            asprintf(&child, "%s/%s", path, entries[i]->d_name) >= 0) {
            ret = run_path(child);
            free(child);
        }
        free(entries[i]);
    }
    free(entries);
    return ret;
}

int main(int argc, char **argv)
{
    signal(SIGABRT, on_abort);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(name_input);
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i]) != 0)
            return 1;
    printf("replay: %lu inputs passed\n", ran);
    return 0;
}
