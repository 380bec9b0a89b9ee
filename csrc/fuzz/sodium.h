/*
 * sodium.h - the system's libsodium for the drivers that check against it
 * (noise, x25519): loaded at run time, so that pywg itself links none.
 */
#pragma once
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* libsodium's function `name` (sodium_init() already called), or exit(1)
 * naming what is missing. */
static inline void *fz_sodium(const char *name)
{
    static void *lib;
    void *f;

    if (!lib) {
        lib = dlopen("libsodium.so.23", RTLD_NOW);
        if (!lib)
            lib = dlopen("libsodium.so", RTLD_NOW);
        if (lib)
            ((int (*)(void))dlsym(lib, "sodium_init"))();
    }
    f = lib ? dlsym(lib, name) : NULL;
    if (!f) {
        fprintf(stderr, "fuzz: libsodium's %s not found (Debian: libsodium23)\n", name);
        exit(1);
    }
    return f;
}
