"""SaveConfig: write the running interface back to its file, as wg-quick's save_config.

The file becomes an [Interface] section with the wg-quick settings as they are now (the
link's addresses, resolvconf's nameservers, the link's MTU if the file had one, the Table
and the hooks as the file had them), followed by the device's configuration exactly as
`wg showconf` prints it (format_showconf: the same fields, order and spelling as wg's
showconf.c). wg-quick writes only the nameservers back; pywg keeps the search domains too,
since they are read from the same file. The new file is written beside the old one with
mode 0600, synced, then renamed over it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Sequence

from pywg._config.model import Endpoint
from pywg._config.uapi import DeviceSnapshot
from pywg._tools.conffile import QuickConfig
from pywg._tools.quick.plan import Interface, ntop, ntop_network
from pywg._tools.quick.report import QuickError

__all__ = ["format_showconf", "saved_config", "write_config"]


def _endpoint(endpoint: Endpoint) -> str:
    """As wg prints it through getnameinfo(NI_NUMERICHOST): IPv6 in brackets, with its
    scope."""
    ip = endpoint.ip
    if isinstance(ip, ipaddress.IPv6Address):
        scope = f"%{ip.scope_id}" if ip.scope_id else ""
        return f"[{ntop(ipaddress.IPv6Address(ip.packed))}{scope}]:{endpoint.port}"
    return f"{ntop(ip)}:{endpoint.port}"


def format_showconf(snapshot: DeviceSnapshot) -> str:
    """`wg showconf IFNAME` for this snapshot."""
    cfg = snapshot.config
    out = ["[Interface]"]
    if snapshot.listen_port:
        out.append(f"ListenPort = {snapshot.listen_port}")
    if cfg.fwmark:
        out.append(f"FwMark = {cfg.fwmark:#x}")
    if cfg.private_key is not None:
        out.append(f"PrivateKey = {cfg.private_key.base64()}")
    out.append("")
    for i, peer in enumerate(cfg.peers):
        stats = snapshot.stats.get(peer.public_key)
        endpoint = (stats.endpoint if stats is not None else None) or peer.endpoint
        out += ["[Peer]", f"PublicKey = {peer.public_key.base64()}"]
        if peer.preshared_key is not None:
            out.append(f"PresharedKey = {peer.preshared_key.base64()}")
        if peer.allowed_ips:
            out.append("AllowedIPs = " + ", ".join(map(ntop_network, peer.allowed_ips)))
        if endpoint is not None:
            out.append(f"Endpoint = {_endpoint(endpoint)}")
        if peer.persistent_keepalive_interval:
            out.append(f"PersistentKeepalive = {peer.persistent_keepalive_interval}")
        if i + 1 < len(cfg.peers):
            out.append("")
    return "".join(line + "\n" for line in out)


def saved_config(quick: QuickConfig, addresses: Sequence[Interface],
                 nameservers: Sequence[str], search: Sequence[str], link_mtu: int | None,
                 showconf: str) -> str:
    """The new file: the wg-quick settings in place of showconf's `[Interface]` line."""
    head = ["[Interface]"]
    head += [f"Address = {ntop(a.ip)}/{a.network.prefixlen}" for a in addresses]
    head += [f"DNS = {server}" for server in nameservers]
    head += [f"DNS = {domain}" for domain in search]
    if quick.mtu is not None and link_mtu is not None:
        head.append(f"MTU = {link_mtu}")
    if quick.table is not None:
        head.append(f"Table = {quick.table}")
    if quick.save_config:
        head.append("SaveConfig = true")
    for key, hooks in (("PreUp", quick.pre_up), ("PostUp", quick.post_up),
                       ("PreDown", quick.pre_down), ("PostDown", quick.post_down)):
        head += [f"{key} = {hook}" for hook in hooks]
    body = showconf.replace("[Interface]\n", "".join(line + "\n" for line in head), 1)
    return body.rstrip("\n") + "\n"  # as bash's $(...) then echo leave it


def write_config(path: str, text: str) -> None:
    """Replace the file at `path` with `text`, atomically, readable by root only."""
    tmp = f"{path}.tmp"
    old_umask = os.umask(0o077)
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise QuickError(f"Could not write configuration file {path}: {e.strerror}") from e
    finally:
        os.umask(old_umask)
