"""Interoperability suite (issue 4): real implementations in network namespaces.

Every test drives implementations only as users do (their command line, `ip`, `wg`,
`wg-quick`, the UAPI socket, traffic) and runs for each pairing of Debian's wireguard-go
and pywg (wggo-wggo, wggo-pywg, pywg-wggo, pywg-pywg); an implementation that is missing
is skipped with the reason. Namespaces, daemons, tunnels, checked transfers and captures
come from tests/harness; here are only the tests, their fixtures (conftest.py), and

    fdlauncher.py  hands a TUN and a listening UAPI socket to an implementation by fd
"""
