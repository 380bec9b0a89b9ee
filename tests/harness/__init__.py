"""The one harness for namespaces and daemons, shared by the integration tests, `make bench`
and `make demo`. One concept per module, each built on the ones above it:

    procs      child processes: bounded commands, background processes stopped by own PID,
               the clean-up registry; HarnessError, the root of every error here
    wait       bounded polling
    netns      network namespaces: unique names, run inside, enter from this process
    links      veth pairs, addresses, MTU, interface counters
    files      a private work directory, owner-only files
    impls      the implementations: wireguard-go, pywg, and WG_IMPLS's (name=/path,...)
    wg         the real `wg` tool: keys, set/setconf, `wg show dump`
    daemons    one implementation serving one interface: start, find, stop, leftovers
    topology   nodes, links and daemons together: pair, star (a hub and N clients), chain
               (a routing namespace between two peers), any implementation on any node
    probes     ping (with retries, one echo, a flood), UDP datagrams, a listening TCP port
    transfer   a TCP transfer checked by sha256 at both ends (tcpcheck.py runs there)
    capture    WireGuard messages on a veth, from a raw packet socket
    nat        a UDP source port rewritten in a namespace (roaming)
    impair     an impaired link in a chain's middle: loss and duplication (nftables),
               delay and reordering (a relay process on a TUN)
    skips      pytest only: skip with a reason when root, a tool or an implementation is missing
"""
