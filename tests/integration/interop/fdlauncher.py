"""Open a TUN and a listening UAPI socket, then exec an implementation that adopts them.

    python fdlauncher.py pi|no-pi IFNAME COMMAND [ARGS...]

The TUN (IFF_TUN, with IFF_NO_PI for "no-pi") becomes fd 3 and the UNIX socket
/var/run/wireguard/IFNAME.sock, already listening, fd 4; the implementation is told so
through WG_TUN_FD=3 and WG_UAPI_FD=4 and runs in the foreground (WG_PROCESS_FOREGROUND=1),
in place of this process, so it keeps our PID. Standard library only.

Debian's wireguard-go 0.0.20220316 reads an adopted TUN as if it carried the 4-byte packet
information header (it creates its own with IFF_NO_PI, but assumes the header on a TUN it is
given), so a launcher for it must open the TUN without IFF_NO_PI.
"""

import fcntl
import os
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TUN_FD, UAPI_FD = 3, 4


def main(mode: str, ifname: str, command: list[str]) -> None:
    flags = IFF_TUN | (IFF_NO_PI if mode == "no-pi" else 0)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", ifname.encode(), flags))
    os.makedirs("/var/run/wireguard", mode=0o755, exist_ok=True)
    path = f"/var/run/wireguard/{ifname}.sock"
    old_umask = os.umask(0o077)
    uapi = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    uapi.bind(path)
    os.umask(old_umask)
    uapi.listen(16)
    # Both are lifted above the targets first, so placing one cannot close the other.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (tun, uapi.fileno())]
    for fd, target in zip(high, (TUN_FD, UAPI_FD), strict=True):
        os.dup2(fd, target)
        os.set_inheritable(target, True)
    env = dict(os.environ, WG_TUN_FD=str(TUN_FD), WG_UAPI_FD=str(UAPI_FD),
               WG_PROCESS_FOREGROUND="1")
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
