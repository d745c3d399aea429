"""Where a job callback may go: public addresses only, unless ``DOCSORT_CALLBACK_ALLOWED_NETWORKS``
names others; checked when the callback is sent, on the addresses the name resolves to then.

The request goes to the address that was checked (the URL's host replaced by it, the name kept in the
``Host`` header and, for HTTPS, in SNI and certificate checks), so a name that resolves to a public
address when checked and to a private one a moment later (DNS rebinding) reaches only the checked one.
Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpx

from schema.errors import DocsortError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


class CallbackRefused(DocsortError):
    """A callback URL that leads to an address callbacks may not reach."""


@dataclass(frozen=True)
class Target:
    """A checked callback: the URLs to connect to (one per checked address, tried in order), and the
    headers and extensions that keep the name for the server and for TLS."""

    urls: list[httpx.URL]
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def _plain(ip: Address) -> Address:
    mapped = ip.ipv4_mapped if isinstance(ip, IPv6Address) else None
    return mapped or ip


def allowed_address(ip: Address, allowed: Sequence[Network]) -> bool:
    """A public (global unicast) address, or one in an allowed network."""
    ip = _plain(ip)
    if any(ip.version == net.version and ip in net for net in allowed):
        return True
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CallbackRefused(f"{host}: the name does not resolve ({exc.strerror})") from exc
    found: list[Address] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def check_target(url: str, allowed: Sequence[Network]) -> Target:
    """The checked target of ``url``, or :class:`CallbackRefused` naming the address and the setting."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CallbackRefused(f"{url[:200]}: not an http:// or https:// URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = _resolve(parsed.host, port)
    refused = [ip for ip in addresses if not allowed_address(ip, allowed)]
    if refused or not addresses:
        raise CallbackRefused(
            f"{parsed.host} resolves to {refused[0] if refused else 'no address'}, which callbacks may not "
            "reach (not a public address; DOCSORT_CALLBACK_ALLOWED_NETWORKS can allow a network)"
        )
    host_header = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    urls = [parsed.copy_with(host=str(ip)) for ip in addresses]
    return Target(urls, {"Host": host_header}, extensions)
