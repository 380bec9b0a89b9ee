// The pywg status page: reads /api/status (the same reading as `pywg status --json`, plus
// each peer's recent rates) every interval and redraws. Text goes in through textContent
// only, so a name in a config file can never become markup.
"use strict";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const SPANS = [["year", 31536000], ["day", 86400], ["hour", 3600], ["minute", 60],
               ["second", 1]];
const SVG = "http://www.w3.org/2000/svg";
let updates = 0;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function size(count) {
  if (count < 1024) return `${count} B`;
  let value = count, unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(2)} ${UNITS[unit]}`;
}

function speed(rate) {
  return rate === null || rate === undefined ? "-" : `${size(Math.round(rate))}/s`;
}

function ago(timestamp, now) {
  if (!timestamp) return "never";
  let seconds = Math.max(0, Math.floor(now) - timestamp);
  if (seconds === 0) return "now";
  const parts = [];
  for (const [name, length] of SPANS) {
    const count = Math.floor(seconds / length);
    seconds -= count * length;
    if (count) parts.push(`${count} ${name}${count === 1 ? "" : "s"}`);
  }
  return `${parts.join(", ")} ago`;
}

function sparkline(samples) {
  const width = 120, height = 28;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "sparkline");
  svg.dataset.samples = String(samples.length);
  const peak = Math.max(1, ...samples.map(s => Math.max(s[1], s[2])));
  const step = samples.length > 1 ? width / (samples.length - 1) : width;
  for (const [index, color] of [[1, "var(--rx)"], [2, "var(--tx)"]]) {
    const line = document.createElementNS(SVG, "polyline");
    const points = samples.map((s, i) =>
      `${(i * step).toFixed(1)},${(height - 2 - (s[index] / peak) * (height - 4)).toFixed(1)}`);
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "1.5");
    svg.appendChild(line);
  }
  return svg;
}

function detail(list, label, value, className) {
  const item = el("div", className);
  item.appendChild(el("dt", "", label));
  item.appendChild(el("dd", "", value));
  list.appendChild(item);
}

function details(tunnel) {
  const list = el("dl", "details");
  const addresses = tunnel.addresses === null ? "not in this namespace"
    : (tunnel.addresses.join(", ") || "none");
  detail(list, "Public key", tunnel.public_key || "(none)");
  detail(list, "Addresses", addresses);
  detail(list, "MTU", tunnel.mtu === null ? "-" : String(tunnel.mtu));
  detail(list, "Listen port", tunnel.listen_port ? String(tunnel.listen_port) : "-");
  detail(list, "RX", `${size(tunnel.rx_bytes)} (${speed(tunnel.rx_rate)})`, "rx");
  detail(list, "TX", `${size(tunnel.tx_bytes)} (${speed(tunnel.tx_rate)})`, "tx");
  const drops = Object.entries(tunnel.drops || {}).filter(([, count]) => count > 0);
  if (drops.length) {
    detail(list, "Dropped", drops.map(([reason, count]) => `${reason} ${count}`).join(", "),
           "drops");
  }
  return list;
}

function peerRow(peer, now, samples) {
  const row = el("tr", "peer");
  row.dataset.publicKey = peer.public_key;
  row.dataset.state = peer.state;
  const state = el("td", "state");
  state.appendChild(el("span", `dot ${peer.state}`));
  state.appendChild(document.createTextNode(peer.state));
  row.appendChild(state);
  row.appendChild(el("td", "name", peer.name || "-"));
  const key = el("td", "mono key", `${peer.public_key.slice(0, 10)}…`);
  key.title = peer.public_key;
  row.appendChild(key);
  row.appendChild(el("td", "handshake", ago(peer.latest_handshake, now)));
  row.appendChild(el("td", "mono endpoint", peer.endpoint || "(none)"));
  row.appendChild(el("td", "mono allowed", peer.allowed_ips.join(", ") || "(none)"));
  for (const [name, value] of [["rx", peer.rx_bytes], ["tx", peer.tx_bytes]]) {
    const cell = el("td", `num ${name}`, size(value));
    cell.dataset.bytes = String(value);
    cell.title = `${value} bytes`;
    row.appendChild(cell);
  }
  const throughput = el("td", "throughput");
  throughput.appendChild(sparkline(samples || []));
  const rates = el("div", "rates");
  rates.appendChild(el("div", "rx", `↓ ${speed(peer.rx_rate)}`));
  rates.appendChild(el("div", "tx", `↑ ${speed(peer.tx_rate)}`));
  throughput.appendChild(rates);
  row.appendChild(throughput);
  return row;
}

function tunnelCard(tunnel, now, history) {
  const card = el("section", "tunnel");
  card.dataset.tunnel = tunnel.name;
  const title = el("h2");
  title.appendChild(el("span", "name", tunnel.name));
  if (tunnel.description) title.appendChild(el("span", "description", tunnel.description));
  const count = tunnel.peers.length;
  title.appendChild(el("span", "badge", `${count} peer${count === 1 ? "" : "s"}`));
  card.appendChild(title);
  if (tunnel.error) {
    card.appendChild(el("p", "error", tunnel.error));
    return card;
  }
  card.appendChild(details(tunnel));
  if (count) {
    const table = el("table", "peers");
    const head = el("tr");
    for (const label of ["Status", "Name", "Public key", "Latest handshake", "Endpoint",
                         "Allowed IPs", "RX", "TX", "Throughput"]) {
      head.appendChild(el("th", "", label));
    }
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const peer of tunnel.peers) {
      body.appendChild(peerRow(peer, now, (history[tunnel.name] || {})[peer.public_key]));
    }
    table.appendChild(body);
    card.appendChild(table);
  }
  return card;
}

function render(state) {
  const main = document.getElementById("tunnels");
  const { status, history } = state;
  const cards = status.tunnels.map(t => tunnelCard(t, status.time, history));
  if (!cards.length) cards.push(el("p", "muted", "No WireGuard interfaces answer here."));
  main.replaceChildren(...cards);
  updates += 1;
  document.body.dataset.updates = String(updates);
  const stamp = new Date(status.time * 1000).toLocaleTimeString();
  document.getElementById("updated").textContent = `updated ${stamp}`;
}

async function refresh() {
  let interval = 1;
  try {
    const reply = await fetch("/api/status", { cache: "no-store" });
    if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
    const state = await reply.json();
    interval = Math.max(0.5, state.interval || 1);
    render(state);
  } catch (error) {
    document.getElementById("updated").textContent = `connection lost (${error.message}); retrying`;
  }
  setTimeout(refresh, interval * 1000);
}

refresh();
