"""The Host header values the service and the console answer to (DNS rebinding).

A web page on another site can make a browser send requests here by pointing its own name
at this machine's address; the browser then sends that name as the Host. Only the names in
FOOTAGE_ALLOWED_HOSTS (loopback by default), and the address listened on when it is one
address, are answered. Both front doors take the list from here.
"""

from __future__ import annotations

import ipaddress

from footage.settings import Settings


def allowed_hosts(settings: Settings, listen: str | None = None) -> list[str]:
    """Host patterns as Starlette and Streamlit match them (ports ignored); IPv6 addresses
    in both spellings (a Host header brackets them)."""
    names = list(settings.allowed_hosts)
    if listen:
        try:
            address = ipaddress.ip_address(listen.strip("[]"))
        except ValueError:
            address = None
        if address is not None and not address.is_unspecified:
            names.append(str(address))  # reached by its address: no name to rebind
    out: list[str] = []
    for name in names:
        out.append(name)
        if ":" in name:
            out.append(f"[{name}]")
    return list(dict.fromkeys(out))


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the port on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
