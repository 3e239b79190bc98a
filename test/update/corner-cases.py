"""RFC 2136 corner cases sent to a popdns primary by an independent encoder (dnspython for the
well-formed messages and the queries; hand-built wire, TSIG-signed here per RFC 8945 §4.3, for the
malformed ones dnspython will not build). Prints one JSON object per case:
{"case": ..., "rcode": ..., "tsig_error": ..., "after": {...}}; the tap test holds the expected values.

usage: corner-cases.py HOST PORT KEYNAME SECRET_BASE64
"""
import base64
import hashlib
import hmac
import json
import socket
import struct
import sys
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

HOST, PORT, KEYNAME, SECRET = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ZONE = "example.com."
KEYRING = dns.tsigkeyring.from_text({KEYNAME: SECRET})
ANY, NONE, IN, CH = 255, 254, 1, 3


def out(case, rcode, after=None, tsig_error=None):
    print(json.dumps({"case": case, "rcode": rcode, "tsig_error": tsig_error, "after": after or {}}), flush=True)


def query(name, rdtype):
    """(rcode text, sorted rdata texts, ttl or None) for NAME/RDTYPE, asked over UDP."""
    q = dns.message.make_query(dns.name.from_text(name, dns.name.from_text(ZONE)), rdtype)
    r = dns.query.udp(q, HOST, port=PORT, timeout=5)
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rdtype):
            return dns.rcode.to_text(r.rcode()), sorted(rd.to_text() for rd in rrset), rrset.ttl
    return dns.rcode.to_text(r.rcode()), [], None


def serial():
    return int(query("@", "SOA")[1][0].split()[2])


def update():
    return dns.update.UpdateMessage(ZONE, keyring=KEYRING, keyname=KEYNAME, keyalgorithm="hmac-sha256")


def send(msg, tcp=False):
    r = (dns.query.tcp if tcp else dns.query.udp)(msg, HOST, port=PORT, timeout=5)
    return dns.rcode.to_text(r.rcode())


# ----- hand-built wire, for what dnspython refuses to build


def wname(text):
    if text == ".":
        return b"\x00"
    out_ = b""
    for label in text.rstrip(".").split("."):
        out_ += bytes([len(label)]) + label.encode()
    return out_ + b"\x00"


def rr(name, rtype, rclass, ttl, rdata=b""):
    return wname(name) + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def raw_update(zones, prereqs, updates, msg_id=0x4242):
    """An UPDATE (opcode 5) with the given sections, TSIG-signed with hmac-sha256 (RFC 8945 §4.3.3)."""
    header = struct.pack("!HHHHHH", msg_id, 5 << 11, len(zones), len(prereqs), len(updates), 0)
    body = b"".join(wname(z) + struct.pack("!HH", t, c) for z, t, c in zones) + b"".join(prereqs) + b"".join(updates)
    unsigned = header + body
    now = int(time.time())
    fudge = 300
    key = wname(KEYNAME.lower())
    alg = wname("hmac-sha256")
    time48 = struct.pack("!HI", now >> 32, now & 0xFFFFFFFF)
    variables = key + struct.pack("!HI", ANY, 0) + alg + time48 + struct.pack("!HHH", fudge, 0, 0)
    mac = hmac.new(base64.b64decode(SECRET), unsigned + variables, hashlib.sha256).digest()
    tsig_rdata = alg + time48 + struct.pack("!HH", fudge, len(mac)) + mac + struct.pack("!HHH", msg_id, 0, 0)
    tsig = key + struct.pack("!HHIH", 250, ANY, 0, len(tsig_rdata)) + tsig_rdata
    header = struct.pack("!HHHHHH", msg_id, 5 << 11, len(zones), len(prereqs), len(updates), 1)
    return header + body + tsig


def send_raw(wire):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(wire, (HOST, PORT))
        resp, _ = s.recvfrom(65535)
    finally:
        s.close()
    flags = struct.unpack("!H", resp[2:4])[0]
    ar = struct.unpack("!H", resp[10:12])[0]
    # The TSIG error (RFC 8945 §4.2), if the response carries a TSIG record last.
    return dns.rcode.to_text(flags & 0xF), ar


A_10 = bytes([192, 0, 2, 10])
SOA_QZONE = (ZONE, 6, IN)

# ----- §3.1 zone section
out("zone section with no zone (ZOCOUNT 0)", send_raw(raw_update([], [], []))[0])
out("zone section with two zones (ZOCOUNT 2)", send_raw(raw_update([SOA_QZONE, SOA_QZONE], [], []))[0])
out("zone section type A, not SOA", send_raw(raw_update([(ZONE, 1, IN)], [], []))[0])
out("a zone the server does not serve", send(dns.update.UpdateMessage("example.org.", keyring=KEYRING, keyname=KEYNAME, keyalgorithm="hmac-sha256")))

# ----- §3.2 prerequisites
out("prerequisite with TTL 300", send_raw(raw_update([SOA_QZONE], [rr("www." + ZONE, 1, ANY, 300)], []))[0])
out("prerequisite name outside the zone", send_raw(raw_update([SOA_QZONE], [rr("www.example.org.", 1, ANY, 0)], []))[0])
out("class ANY prerequisite with RDATA", send_raw(raw_update([SOA_QZONE], [rr("www." + ZONE, 1, ANY, 0, A_10)], []))[0])
out("class NONE prerequisite with RDATA", send_raw(raw_update([SOA_QZONE], [rr("www." + ZONE, 1, NONE, 0, A_10)], []))[0])
out("class CH prerequisite", send_raw(raw_update([SOA_QZONE], [rr("www." + ZONE, 1, CH, 0)], []))[0])
out("prerequisite of meta type AXFR", send_raw(raw_update([SOA_QZONE], [rr("www." + ZONE, 252, ANY, 0)], []))[0])

u = update()
u.present("www", "A")
u.add("pre1", 300, "TXT", "\"rrset exists\"")
out("RRset exists (value-independent), present", send(u), {"pre1": query("pre1", "TXT")[1]})
u = update()
u.present("nope", "A")
u.add("pre2", 300, "TXT", "never")
out("RRset exists (value-independent), absent", send(u), {"pre2": query("pre2", "TXT")[1]})
u = update()
u.present("www", "A", "192.0.2.10")
u.add("pre3", 300, "TXT", "\"value matched\"")
out("RRset exists (value-dependent), equal", send(u), {"pre3": query("pre3", "TXT")[1]})
u = update()
u.present("www", "A", "192.0.2.99")
out("RRset exists (value-dependent), different RDATA", send(u))
u = update()
u.present("ns1", "A", "192.0.2.1")
u.present("ns1", "A", "192.0.2.2")
out("RRset exists (value-dependent), more RRs than the RRset", send(u))
u = update()
u.absent("www", "A")
out("RRset does not exist, but it does", send(u))
u = update()
u.present("nope")
out("name is in use, but it is not", send(u))
u = update()
u.absent("www")
out("name is not in use, but it is", send(u))
u = update()
u.absent("nope")
u.absent("www", "AAAA")
u.add("pre4", 300, "TXT", "\"all prerequisites hold\"")
out("name not in use and RRset does not exist, both hold", send(u), {"pre4": query("pre4", "TXT")[1]})

# ----- §3.4.1 prescan of the update section
s0 = serial()
out("update name outside the zone", send_raw(raw_update([SOA_QZONE], [], [rr("x.example.org.", 1, IN, 300, A_10)]))[0])
out("add of meta type ANY", send_raw(raw_update([SOA_QZONE], [], [rr("x." + ZONE, 255, IN, 300, b"")]))[0])
out("add of meta type AXFR", send_raw(raw_update([SOA_QZONE], [], [rr("x." + ZONE, 252, IN, 300, b"")]))[0])
out("class ANY delete with TTL 300", send_raw(raw_update([SOA_QZONE], [], [rr("www." + ZONE, 1, ANY, 300)]))[0])
out("class ANY delete with RDATA", send_raw(raw_update([SOA_QZONE], [], [rr("www." + ZONE, 1, ANY, 0, A_10)]))[0])
out("class NONE delete with TTL 300", send_raw(raw_update([SOA_QZONE], [], [rr("www." + ZONE, 1, NONE, 300, A_10)]))[0])
out("update of class CH", send_raw(raw_update([SOA_QZONE], [], [rr("www." + ZONE, 1, CH, 300, A_10)]))[0])
u = update()
u.add("allornothing", 300, "TXT", "first")
u.add("x.example.org.", 300, "A", "192.0.2.1")
out(
    "an update with one bad record applies nothing",
    send(u),
    {"allornothing": query("allornothing", "TXT")[1], "serial_unchanged": serial() == s0},
)

# ----- §3.4.2 semantics
u = update()
u.add("www", 300, "CNAME", "elsewhere.example.net.")
out("CNAME added where other data exists is ignored", send(u), {"www_cname": query("www", "CNAME")[1], "www_a": query("www", "A")[1]})
u = update()
u.add("alias", 300, "CNAME", "www.example.com.")
send(u)
u = update()
u.add("alias", 300, "A", "192.0.2.55")
out("A added at a CNAME owner is ignored", send(u), {"alias_cname": query("alias", "CNAME")[1]})
u = update()
u.add("alias", 300, "CNAME", "ns1.example.com.")
out("CNAME added at a CNAME owner replaces it", send(u), {"alias_cname": query("alias", "CNAME")[1]})
s1 = serial()
u = update()
u.add("@", 300, "SOA", "ns1.example.com. hostmaster.example.com. %d 3600 600 86400 300" % (s1 - 1))
out("SOA with a lower serial is ignored", send(u), {"serial_unchanged": serial() == s1})
u = update()
u.delete("@", "NS")
out("deleting the apex NS RRset is ignored", send(u), {"ns": query("@", "NS")[1]})
u = update()
u.delete("@")
out("deleting every RRset at the apex keeps SOA and NS", send(u), {"ns": query("@", "NS")[1], "soa": len(query("@", "SOA")[1])})
u = update()
u.delete("@", "NS", "ns1.example.com.")
out("deleting the last apex NS record is ignored", send(u), {"ns": query("@", "NS")[1]})
s2 = serial()
u = update()
u.add("www", 300, "A", "192.0.2.10")
out("a duplicate add changes nothing (no serial bump)", send(u), {"serial_unchanged": serial() == s2})
u = update()
u.delete("www", "A", "192.0.2.200")
out("deleting a record that is not there changes nothing", send(u), {"serial_unchanged": serial() == s2})
u = update()
u.add("www", 60, "A", "192.0.2.11")
r = send(u)
rc, rds, ttl = query("www", "A")
out("an add with another TTL: the RRset takes it (RFC 2181 §5.2)", r, {"www_a": rds, "ttl": ttl, "serial_step": serial() - s2})
u = update()
u.delete("www", "A", "192.0.2.11")
u.replace("pre1", 120, "TXT", "replaced")
out("replace over TCP", send(u, tcp=True), {"pre1": query("pre1", "TXT")[1], "www_a": query("www", "A")[1]})
