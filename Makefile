# pywg - a userspace WireGuard. `make demo` and `make test` set everything up on
# a fresh Debian machine (as root they also install the Debian packages needed).

PYTHON   ?= python3
VENV     ?= .venv
VPY      := $(VENV)/bin/python
PYTEST   := $(VPY) -m pytest
# nftables: NAT in the roaming tests and wg-quick's full-tunnel rules; linux-perf: syscall
# counts in make bench; chromium and chromium-driver: the status page's browser test;
# systemd: systemd-analyze verify on the units; libsodium23: X25519 for the handshake's fuzz
# target (pywg itself uses pynacl's copy).
APT_PKGS := wireguard-tools wireguard-go iperf3 iputils-ping iproute2 nftables procps linux-perf \
            gcc libc6-dev make chromium chromium-driver systemd libsodium23
CSRC     := $(wildcard csrc/*.c csrc/*/*.c csrc/*.h csrc/*/*.h) csrc/build_ffi.py csrc/build_ffi_test.py \
            csrc/build_crypto.py
# The data plane's C sources, without the self-test and fuzz drivers (they have main()).
DP_C     := $(filter-out csrc/selftest/% csrc/fuzz/%,$(filter %.c,$(CSRC)))
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS_LINT := -std=gnu11 -O2 -Wall -Wextra -Werror -Icsrc
PYTEST_ARGS ?=

.PHONY: all install deps build test unit ctest integration long soak demo bench bench-memory asan tsan selftest lint fuzz fuzz-smoke fuzz-regress fuzz-campaign clean

all: install

# Debian packages for the integration tests and the demo, and the venv module and Python
# headers if the system Python lacks them; only as root, only if missing.
deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	  $(PYTHON) -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
	    2>/dev/null || missing="$$missing python3-dev"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  fi; \
	else echo "not root: skipping Debian packages ($(APT_PKGS))"; fi

$(VENV)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel cffi
	$(VPY) -m pip install -q --config-settings editable_mode=compat -e '.[dev,bench]'
	touch $@

install: $(VENV)/.installed build

# The build needs the venv, which may need Debian's python3-venv: deps first.
$(VENV)/.installed: | deps

# Rebuild the C extensions in place when csrc/ changes (pywg._wgdp, the data plane, and
# pywg._crypto, the handshake's cryptography: setup.py builds both), and the test-only module with the
# hooks of csrc/wg_dp_test.h (never shipped) in build/wgdp-test, where tests/conftest.py and
# bench/micro.py find it.
build: $(VENV)/.installed pywg/.built build/wgdp-test/.built
pywg/.built: $(CSRC)
	$(VPY) setup.py -q build_ext --inplace --build-temp build/ffi >/dev/null
	touch $@
build/wgdp-test/.built: $(CSRC)
	$(VPY) csrc/build_ffi_test.py build/wgdp-test >/dev/null
	touch $@

# The interop tests that carry traffic a second time with every pywg offload off
# (PYWG_DISABLE_OFFLOADS passes through its harness): with offloads or without, pywg must
# interoperate. The pairs without pywg (wggo-wggo) and the control-plane files (wg, wg-quick,
# logs, daemon) would only repeat themselves; `make long` runs the whole interop suite again.
INTEROP_TRAFFIC := $(addprefix tests/integration/interop/test_,tunnel.py offload.py roaming.py \
                   timers.py containers.py)
test: deps install selftest fuzz-regress fuzz-smoke
	$(PYTEST) tests $(PYTEST_ARGS)
	PYWG_DISABLE_OFFLOADS=all $(PYTEST) $(INTEROP_TRAFFIC) -k "not wggo-wggo" $(PYTEST_ARGS)

unit: install
	$(PYTEST) tests/unit tests/c $(PYTEST_ARGS)

ctest: install
	$(PYTEST) tests/c $(PYTEST_ARGS)

integration: deps install
	$(PYTEST) tests/integration $(PYTEST_ARGS)

# The long variants that make test leaves out (pytest's `long` marker): 100 MB through each
# impairment of tests/integration/test_impaired.py, a routing loop through two tunnels; then
# the whole interop suite with every pywg offload off.
long: deps install
	$(PYTEST) tests -m long $(PYTEST_ARGS)
	PYWG_DISABLE_OFFLOADS=all $(PYTEST) tests/integration/interop $(PYTEST_ARGS)

# The soak (tests/integration/test_soak.py) for MINUTES: two pywg daemons rekeying every 5 s
# under traffic both ways and a ping every 10 ms each way; make test runs 24 s of it.
soak: deps install
	SOAK_MINUTES=$(MINUTES) $(PYTEST) tests/integration/test_soak.py -s $(PYTEST_ARGS)

# The C self-tests as a plain program (no Python), as the kernel module's are.
selftest: build/selftest/run
	build/selftest/run
build/selftest/run: $(CSRC) $(wildcard csrc/selftest/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LINT) -g -o $@ $(DP_C) csrc/selftest/*.c -pthread

# The C built with AddressSanitizer and UndefinedBehaviorSanitizer: the plain
# self-tests, then the C-facing Python tests against a sanitized extension and
# test module built beside the tree (build/asan, build/asan-test), so the normal
# build is left alone.
asan: install
	@mkdir -p build/asan-selftest
	$(CC) $(CFLAGS_LINT) -O1 -g $(SANITIZE) -o build/asan-selftest/run $(DP_C) csrc/selftest/*.c -pthread
	ASAN_OPTIONS=detect_leaks=1 build/asan-selftest/run
	rm -rf build/asan && mkdir -p build/asan && cp -r pywg build/asan/ && rm -f build/asan/pywg/_wgdp*.so build/asan/pywg/_crypto*.so
	PYWG_SANITIZE=1 $(VPY) setup.py -q build_ext --build-lib build/asan --build-temp build/asan-tmp --force >/dev/null
	rm -rf build/asan-test && PYWG_SANITIZE=1 $(VPY) csrc/build_ffi_test.py build/asan-test >/dev/null
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  PYTHONMALLOC=malloc PYWG_LEAK_CHECK=1 \
	  ASAN_OPTIONS=detect_leaks=1:leak_check_at_exit=0:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/c/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  PYTHONPATH=build/asan PYWG_TEST_FFI_DIR=build/asan-test PYWG_EXPECT_SANITIZED=1 $(VPY) -P -m pytest -p no:cacheprovider --import-mode=append tests/c $(PYTEST_ARGS)

# The C built with ThreadSanitizer (the data plane runs several threads per direction, the
# handshake's batches a pool of workers): the plain self-tests, then the C-facing Python tests
# against a TSan extension and test module in build/tsan and build/tsan-test. GCC cannot
# instrument atomic_thread_fence (-Wno-tsan): the fences order a store before later loads
# (epoch.h), which is not a happens-before edge TSan would need; tests/c/tsan.supp says what
# is suppressed and why.
TSAN_ENV := TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/c/tsan.supp"
tsan: install
	@mkdir -p build/tsan-selftest
	$(CC) $(CFLAGS_LINT) -Wno-tsan -O1 -g -fsanitize=thread -fno-omit-frame-pointer \
	  -o build/tsan-selftest/run $(DP_C) csrc/selftest/*.c -pthread
	$(TSAN_ENV) build/tsan-selftest/run
	rm -rf build/tsan && mkdir -p build/tsan && cp -r pywg build/tsan/ && rm -f build/tsan/pywg/_wgdp*.so build/tsan/pywg/_crypto*.so
	PYWG_SANITIZE=thread PYWG_CFLAGS=-Wno-tsan $(VPY) setup.py -q build_ext --build-lib build/tsan --build-temp build/tsan-tmp --force >/dev/null
	rm -rf build/tsan-test && PYWG_SANITIZE=thread PYWG_CFLAGS=-Wno-tsan $(VPY) csrc/build_ffi_test.py build/tsan-test >/dev/null
	@# pytest holds the tests' stderr, so the reports go to files, shown if there are any.
	rm -f build/tsan/report.*
	LD_PRELOAD="$$($(CC) -print-file-name=libtsan.so)" \
	  TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$(CURDIR)/build/tsan/report:suppressions=$(CURDIR)/tests/c/tsan.supp" \
	  PYTHONPATH=build/tsan PYWG_TEST_FFI_DIR=build/tsan-test PYWG_EXPECT_SANITIZED=tsan $(VPY) -P -m pytest -p no:cacheprovider --import-mode=append tests/c $(PYTEST_ARGS) \
	  || { cat build/tsan/report.* 2>/dev/null; exit 1; }

lint: install
	$(VENV)/bin/ruff check pywg tests bench csrc/build_ffi.py csrc/build_ffi_test.py csrc/build_crypto.py
	$(VENV)/bin/mypy
	$(CC) $(CFLAGS_LINT) -fsyntax-only $(DP_C) csrc/selftest/*.c
	$(CC) $(CFLAGS_LINT) -fsyntax-only -Wno-unused-function csrc/fuzz/*.c

# The live tunnel of the README (bench/demo.py, built from the tests' namespace harness).
demo: deps install
	$(VPY) -m bench.demo

bench: deps install
	$(VPY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

# The long run: two pywg daemons at full rate for MINUTES, resident memory sampled; the report
# (bench/results/memory-<time>/memory.md) says how much each grew over the second half.
MINUTES ?= 10
bench-memory: deps install
	$(VPY) -m bench.memory --minutes $(MINUTES)

# libFuzzer drivers (csrc/fuzz/), one concept each, with ASan and UBSan: the AEAD backends
# against the portable one; the handshake's message steps (noise.c) on forged messages; the replay window and allowed IPs against simple models; the ICMP
# builder; the TUN read path (virtio header, TSO/USO split); GRO towards the TUN; UDP GRO
# splitting; the receive path from datagram to TUN. `make fuzz` runs each for FUZZ_SECONDS
# (its corpus grows in build/fuzz/corpus/, seeded from tests/fuzz/corpus/; what crashes lands
# in build/fuzz/crashes/). `make test` runs `fuzz-smoke` (each target over its kept corpus and
# crash inputs, then FUZZ_SMOKE_SECONDS more) and `fuzz-regress` (the kept inputs replayed
# without libFuzzer, built with $(CC)). `make fuzz-campaign` runs each of FUZZ_CAMPAIGN
# until FUZZ_RUNS executions or FUZZ_CAMPAIGN_SECONDS, one at a time at nice 19 (it takes only
# the CPU others leave), and appends its table (executions, seconds, exec/s, coverage, corpus,
# findings, the machine and its load) to build/fuzz/campaign.md. Needs clang and its runtime
# (Debian: clang libclang-rt-14-dev; installed here when run as root).
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_RUNS ?= 10000000
FUZZ_CAMPAIGN_SECONDS ?= 3600
FUZZ_TARGETS := aead noise replay allowedips icmp offload gro udpgro receive x25519
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror -Icsrc -fno-omit-frame-pointer \
                -fno-sanitize-recover=all
# The drivers answer the TUN and UDP system calls themselves (csrc/fuzz/fake_io.c).
FUZZ_LDFLAGS := -Wl,--wrap=readv,--wrap=write,--wrap=writev,--wrap=recvmmsg,--wrap=sendmmsg -pthread
FUZZ_OBJS    := $(patsubst csrc/%.c,%.o,$(DP_C) csrc/fuzz/fake_io.c)
FUZZ_HDRS    := $(filter-out csrc/fuzz/%,$(filter %.h,$(CSRC)))

fuzz: $(FUZZ_TARGETS:%=build/fuzz/bin/%)
	$(PYTHON) tests/fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: $(FUZZ_TARGETS:%=build/fuzz/bin/%)
	$(PYTHON) tests/fuzz/run.py --seconds $(FUZZ_SMOKE_SECONDS) --kept-only $(FUZZ_TARGETS)

FUZZ_CAMPAIGN ?= $(FUZZ_TARGETS)
fuzz-campaign: $(FUZZ_CAMPAIGN:%=build/fuzz/bin/%)
	nice -n 19 $(PYTHON) tests/fuzz/run.py --runs $(FUZZ_RUNS) --max-seconds $(FUZZ_CAMPAIGN_SECONDS) \
	  --record build/fuzz/campaign.md $(FUZZ_CAMPAIGN)

fuzz-regress: $(FUZZ_TARGETS:%=build/fuzz-regress/bin/%)
	@for t in $(FUZZ_TARGETS); do \
	  printf '%-12s' $$t; build/fuzz-regress/bin/$$t tests/fuzz/corpus/$$t tests/fuzz/crashes/$$t || exit 1; \
	done

.PRECIOUS: build/fuzz/obj/%.o build/fuzz/obj-cov/%.o build/fuzz-regress/obj/%.o
build/fuzz/.clang:
	@if ! command -v clang >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && apt-get install -y --no-install-recommends clang libclang-rt-14-dev; fi
	@mkdir -p $(dir $@) && touch $@
FUZZ_CLANG   := clang $(FUZZ_CFLAGS) -Wno-gnu-variable-sized-type-not-at-end -fsanitize=address,undefined
# Coverage guides the fuzzer through the code under test; the drivers' own loops (models,
# reference checksums) and the checksum and crypto loops, which other targets and the
# self-tests cover, would only slow the packet-path targets down. The AEAD and noise targets
# link their own covered build of csrc/crypto, with edges but without the comparison hooks:
# its comparisons are loop bounds and round counts, which the hooks cannot steer and which
# cost a call each in every block of every round. csrc/fuzz/coverage-ignore.txt names the
# structural self-checks the drivers call after every step: test code, not code under test.
FUZZ_COV     := -fsanitize=fuzzer-no-link -fsanitize-coverage-ignorelist=csrc/fuzz/coverage-ignore.txt
FUZZ_CRYPTO  := $(filter csrc/crypto/%,$(DP_C))
build/fuzz/obj/checksum.o $(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj/%.o): FUZZ_COV :=
$(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj-cov/%.o): FUZZ_COV += -fno-sanitize-coverage=trace-cmp
# csrc/fuzz/sanitize-ignore.txt: the crypto loops that touch only their own state go without
# ASan's and UBSan's checks (BLAKE2s's compression); the copies into that state keep them.
FUZZ_SAN     :=
$(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj/%.o) $(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj-cov/%.o): \
  FUZZ_SAN := -fsanitize-ignorelist=csrc/fuzz/sanitize-ignore.txt
build/fuzz/obj/%.o: csrc/%.c $(FUZZ_HDRS) csrc/fuzz/coverage-ignore.txt csrc/fuzz/sanitize-ignore.txt | build/fuzz/.clang
	@mkdir -p $(dir $@)
	$(FUZZ_CLANG) $(FUZZ_COV) $(FUZZ_SAN) -c -o $@ $<
build/fuzz/obj-cov/%.o: csrc/%.c $(FUZZ_HDRS) csrc/fuzz/coverage-ignore.txt csrc/fuzz/sanitize-ignore.txt | build/fuzz/.clang
	@mkdir -p $(dir $@)
	$(FUZZ_CLANG) $(FUZZ_COV) $(FUZZ_SAN) -c -o $@ $<
build/fuzz/obj/fuzz/%.o: csrc/fuzz/%.c $(filter %.h,$(CSRC)) | build/fuzz/.clang
	@mkdir -p $(dir $@)
	$(FUZZ_CLANG) -c -o $@ $<
build/fuzz/bin/aead: build/fuzz/obj/fuzz/aead_fuzz.o $(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj-cov/%.o)
	@mkdir -p $(dir $@)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ -pthread
build/fuzz/bin/noise: build/fuzz/obj/fuzz/noise_fuzz.o $(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj-cov/%.o)
	@mkdir -p $(dir $@)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ -pthread -ldl
build/fuzz/bin/x25519: build/fuzz/obj/fuzz/x25519_fuzz.o $(FUZZ_CRYPTO:csrc/%.c=build/fuzz/obj-cov/%.o)
	@mkdir -p $(dir $@)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ -pthread -ldl
build/fuzz/bin/%: build/fuzz/obj/fuzz/%_fuzz.o $(FUZZ_OBJS:%=build/fuzz/obj/%)
	@mkdir -p $(dir $@)
	clang -fsanitize=fuzzer,address,undefined $(FUZZ_LDFLAGS) -o $@ $^

build/fuzz-regress/obj/%.o: csrc/%.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -fsanitize=address,undefined -c -o $@ $<
build/fuzz-regress/obj/fuzz/%.o: csrc/fuzz/%.c $(filter %.h,$(CSRC))
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -fsanitize=address,undefined -c -o $@ $<
build/fuzz-regress/bin/%: build/fuzz-regress/obj/fuzz/%_fuzz.o build/fuzz-regress/obj/fuzz/replay_main.o \
                      $(FUZZ_OBJS:%=build/fuzz-regress/obj/%)
	@mkdir -p $(dir $@)
	$(CC) -fsanitize=address,undefined $(FUZZ_LDFLAGS) -o $@ $^

# The Python fuzz targets (tests/fuzz/python/), FUZZ_SECONDS each, coverage-guided with
# atheris where it installs (a wheel from PyPI), with hypothesis alone elsewhere; `make test`
# runs each briefly through pytest. FUZZ_PY_ENGINE=hypothesis forces the latter.
FUZZ_PY_ENGINE ?= auto
.PHONY: fuzz-python
fuzz: fuzz-python
fuzz-python: install
	@$(VPY) -c 'import atheris' 2>/dev/null || $(VPY) -m pip install -q atheris || \
	  echo "atheris did not install: hypothesis alone drives the Python targets"
	$(VPY) tests/fuzz/python/run.py --seconds $(FUZZ_SECONDS) --engine $(FUZZ_PY_ENGINE)

clean:
	rm -rf build $(VENV) *.egg-info pywg/_wgdp*.so pywg/_crypto*.so pywg/.built .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- embedded routers: wheels for x86_64, aarch64 and armv7l, tested under emulation -------
# Cross compilers, qemu-user-static and debootstrap come from Debian (installed here as
# root). The target's Python headers are never installed: tests/embedded/sysroot.py unpacks
# them from a private apt into the cache, so nothing can upgrade this machine's own Python.
# The cache (sysroots, dependency wheels built from sdists, emulated root file systems with
# and without the dependency wheels installed, and pywg's wheels and cross-compiled test
# programs keyed by a hash of their sources) is $(EMBEDDED_CACHE), outside the tree; name
# another (EMBEDDED_CACHE=/var/cache/pywg-embedded-cold) for a cold run. PYWG_TARGETS=
# aarch64,... picks targets (default: all).
EMBEDDED_CACHE ?= /var/cache/pywg-embedded
EMBEDDED_APT := qemu-user-static debootstrap gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf \
                libc6-dev-arm64-cross libc6-dev-armhf-cross make
BINFMT := /proc/sys/fs/binfmt_misc

.PHONY: embedded-deps wheels test-embedded

# As root: the packages if missing, binfmt_misc mounted, and qemu's interpreters for the
# targets registered from qemu-user-static's own binfmt.d files (flag F: they also work
# inside a chroot).
embedded-deps: deps
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=""; for p in $(EMBEDDED_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  fi; \
	  mountpoint -q $(BINFMT) || mount -t binfmt_misc binfmt_misc $(BINFMT); \
	  for arch in aarch64 arm; do \
	    [ -e $(BINFMT)/qemu-$$arch ] || cat /usr/lib/binfmt.d/qemu-$$arch.conf > $(BINFMT)/register; \
	  done; \
	else echo "not root: skipping Debian packages and binfmt_misc ($(EMBEDDED_APT))"; fi

# dist/wheelhouse/<target>/: pywg and what it needs; <target>-test/: pytest and hypothesis.
wheels: embedded-deps $(VENV)/.installed
	PYWG_EMBEDDED_CACHE=$(EMBEDDED_CACHE) $(VPY) -m tests.embedded wheels

# The wheels as `make wheels` builds them (the emulated root file systems debootstrapped
# meanwhile, when not cached), then in emulated Debian 12 systems (aarch64; armv7l with and
# without NEON), the targets at once: the pywg wheel installed with pip (the dependency
# wheels are in the cached root file system, installed there by pip from the same
# wheelhouse), the C self-tests and the AEAD fuzz harness cross-compiled, the tests that
# matter on a device (tests/embedded/on_device.py, `pywg selftest` among them), and a
# tunnel to a native wireguard-go (ping, 10 MB each way). Takes the namespace lock for the
# tunnels only. On 2 cores: 2-5 minutes cached (an unchanged tree or not), 14 cold
# (bench/RESULTS.md).
test-embedded: embedded-deps $(VENV)/.installed
	PYWG_EMBEDDED_CACHE=$(EMBEDDED_CACHE) $(VPY) -m tests.embedded all
