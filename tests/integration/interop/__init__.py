"""Interoperability suite (issue 4): real implementations in network namespaces.

Every test drives implementations only as users do (their command line, `ip`, `wg`,
`wg-quick`, the UAPI socket, traffic) and runs for each pairing of Debian's wireguard-go
and pywg (wggo-wggo, wggo-pywg, pywg-wggo, pywg-pywg). pywg's cases skip, saying so, until
`pywg --help` offers the daemon mode (`[-f|--foreground] IFNAME`); from then on they run.

    harness.py     implementations, daemons (start, find, stop), `wg`, bounded waits
    topology.py    two namespaces, a veth, a daemon on each side, a tunnel between them
    transfer.py    TCP transfers checked by sha256 (tcpcheck.py runs at both ends)
    capture.py     WireGuard messages seen on a veth through a raw packet socket
    fdlauncher.py  hands a TUN and a listening UAPI socket to an implementation by fd
"""
