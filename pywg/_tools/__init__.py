"""Internal: the tools around a device: the `pywg` command line, `pywg up/down` (wg-quick
in Python), the UAPI client and wg(8)/wg-quick(8) configuration files."""
