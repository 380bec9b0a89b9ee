"""Prefixes for tests, made with the standard library's ipaddress (an independent parser):
`net("10.0.0.0/8")` is the AllowedIP pywg's own parsers must produce for it."""

import ipaddress

from pywg._config.model import AllowedIP


def net(text: str) -> AllowedIP:
    return AllowedIP.of(ipaddress.ip_network(text, strict=False))
