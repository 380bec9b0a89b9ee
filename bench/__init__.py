"""pywg's benchmark suite: WireGuard implementations side by side in network namespaces.

`python -m bench --help` (or `make bench`, `make bench QUICK=1`) runs it; see bench/RESULTS.md
for recorded runs. Every implementation is treated as a wireguard-go-compatible daemon
binary, so the suite does not import pywg except for the micro-benchmarks of its C code.
"""
