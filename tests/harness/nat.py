"""NAT inside a namespace: a side's UDP source port rewritten, as a NAT would move it.

Stateless nftables rewrites, unlike conntrack NAT, apply to a flow already under way: the
far side sees the tunnel's datagrams come from another port mid-session (roaming).
"""

from __future__ import annotations

from tests.harness import netns

NAT_TABLE = "wgroam"


def rewrite_source_port(ns: str, port: int, new_port: int) -> None:
    """Datagrams leaving ns from `port` leave from `new_port`; answers to `new_port` come
    back to `port`."""
    rules = f"""
table ip {NAT_TABLE} {{
    chain out {{
        type filter hook postrouting priority 300;
        udp sport {port} udp sport set {new_port}
    }}
    chain in {{
        type filter hook prerouting priority -300;
        udp dport {new_port} udp dport set {port}
    }}
}}
"""
    netns.run(ns, ["nft", "-f", "-"], input=rules)


def undo(ns: str) -> None:
    netns.run(ns, ["nft", "delete", "table", "ip", NAT_TABLE], check=False)
