"""`pywg status` in a terminal, drawn by rich: per tunnel a heading with its details, then
a table of its peers, as the pfSense WireGuard status page lays them out."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pywg._tools.status.model import ONLINE, STALE, PeerStatus, Status, TunnelStatus
from pywg._tools.status.words import ago, size, speed

__all__ = ["render"]

_STATE_STYLE = {ONLINE: "bold green", STALE: "bold yellow"}
_NO_STYLE = "bold red"


def _marker(peer: PeerStatus) -> Text:
    return Text(f"● {peer.state}", style=_STATE_STYLE.get(peer.state, _NO_STYLE))


def _heading(tunnel: TunnelStatus) -> Text:
    text = Text()
    text.append(tunnel.name, style="bold cyan")
    if tunnel.description:
        text.append(f"  {tunnel.description}", style="italic")
    text.append(f"  {len(tunnel.peers)} peer{'' if len(tunnel.peers) == 1 else 's'}")
    return text


def _details(tunnel: TunnelStatus) -> Text:
    def field(label: str, value: str) -> Text:
        return Text.assemble((f"{label}: ", "dim"), value)
    addresses = "not in this namespace" if tunnel.addresses is None else (
        ", ".join(tunnel.addresses) or "none")
    fields = [
        field("public key", tunnel.public_key or "(none)"),
        field("addresses", addresses),
        field("MTU", str(tunnel.mtu) if tunnel.mtu is not None else "-"),
        field("listening port", str(tunnel.listen_port) if tunnel.listen_port else "-"),
        field("RX", f"{size(tunnel.rx_bytes)} ({speed(tunnel.rx_rate)})"),
        field("TX", f"{size(tunnel.tx_bytes)} ({speed(tunnel.tx_rate)})"),
    ]
    if tunnel.fwmark:
        fields.append(field("fwmark", f"0x{tunnel.fwmark:x}"))
    drops = {k: v for k, v in (tunnel.drops or {}).items() if v}
    if drops:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(drops.items()))
        fields.append(Text.assemble(("dropped: ", "dim"), (shown, "yellow")))
    return Text("  ").join(fields)


def _peers(tunnel: TunnelStatus, now: float) -> Table:
    table = Table(expand=False, show_edge=False, pad_edge=False, header_style="bold")
    for column in ("Status", "Name", "Public key", "Latest handshake", "Endpoint",
                   "Allowed IPs"):
        table.add_column(column, overflow="fold")
    for column in ("RX", "TX", "RX/s", "TX/s"):
        table.add_column(column, justify="right", no_wrap=True)
    for peer in tunnel.peers:
        table.add_row(
            _marker(peer), peer.name or "-", peer.public_key,
            ago(peer.latest_handshake, now), peer.endpoint or "(none)",
            ", ".join(peer.allowed_ips) or "(none)", size(peer.rx_bytes),
            size(peer.tx_bytes), speed(peer.rx_rate), speed(peer.tx_rate))
    return table


def _tunnel(tunnel: TunnelStatus, now: float) -> RenderableType:
    if tunnel.error:
        return Group(_heading(tunnel), Text(f"  {tunnel.error}", style="red"), Text())
    parts: list[RenderableType] = [_heading(tunnel), _details(tunnel)]
    if tunnel.peers:
        parts.append(_peers(tunnel, now))
    parts.append(Text())
    return Group(*parts)


def render(status: Status) -> RenderableType:
    if not status.tunnels:
        return Text("No WireGuard interfaces answer in this namespace.", style="dim")
    return Group(*(_tunnel(t, status.time) for t in status.tunnels))
