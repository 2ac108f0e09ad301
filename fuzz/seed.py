#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's fixtures: the JSON in the tests' and unit
tests' sources (raw strings, format! strings, json! macros), the JSON blocks of
../shared/reference/*.md, the CNI_ARGS strings the tests use, and a few hand-made inputs per
target. Run it from anywhere, then minimise (`scripts/fuzz --cmin`). Only adds files."""
import hashlib, json, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")

def sources():
    for top in ("crates", "tests"):
        for d, _, fs in os.walk(os.path.join(REPO, top)):
            for f in fs:
                if f.endswith(".rs"):
                    yield open(os.path.join(d, f), encoding="utf-8", errors="replace").read()

def balanced(text, start):
    """The text of the {...} or [...] starting at start (naive about braces in strings)."""
    depth, i, instr = 0, start, False
    while i < len(text):
        c = text[i]
        if instr:
            if c == "\\": i += 1
            elif c == '"': instr = False
        elif c == '"': instr = True
        elif c in "{[": depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0: return text[start:i + 1]
        i += 1
    return None

def candidates():
    for src in sources():
        for m in re.finditer(r'r#+"(.*?)"#+', src, re.S):
            s = m.group(1)
            yield s
            yield re.sub(r"\{[a-z_0-9.:?]*\}", "x", s).replace("{{", "{").replace("}}", "}")
        for m in re.finditer(r"json!\(", src):
            i = m.end()
            while i < len(src) and src[i].isspace(): i += 1
            if i < len(src) and src[i] in "{[":
                b = balanced(src, i)
                if b: yield b
    for f in os.listdir(os.path.join(REPO, "..", "shared", "reference")):
        text = open(os.path.join(REPO, "..", "shared", "reference", f), encoding="utf-8").read()
        for m in re.finditer(r"```json\n(.*?)```", text, re.S):
            yield m.group(1)

def objects():
    seen = {}
    for c in candidates():
        try:
            v = json.loads(c)
        except Exception:
            continue
        if isinstance(v, dict):
            seen[json.dumps(v, sort_keys=True)] = v
    return list(seen.values())

def walk(v):
    yield v
    if isinstance(v, dict):
        for x in v.values(): yield from walk(x)
    elif isinstance(v, list):
        for x in v: yield from walk(x)

def put(target, data):
    if isinstance(data, str): data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16])
    if not os.path.exists(name):
        open(name, "wb").write(data)

def main():
    objs = objects()
    dump = lambda v: json.dumps(v, indent=1)
    plugins = ["bandwidth", "bridge", "firewall", "host-local", "loopback", "portmap", "ptp", "static", "tuning"]
    args = sorted({a for src in sources() for a in re.findall(r'"((?:[A-Za-z0-9_]+=[^";]*;?)+)"', src) if "=" in a})
    for a in args + ["", "IgnoreUnknown=1", "A=1;B", "a=b=c", ";", "IP=10.1.2.3/24"]:
        put("cni_args", a)
    for v in objs:
        text = dump(v)
        if "type" in v or "plugins" in v:
            put("conf", text)
        for sub in walk(v):
            if isinstance(sub, dict) and ("ips" in sub or "ip4" in sub or "interfaces" in sub) and "cniVersion" in sub:
                put("result", dump(sub))
            if isinstance(sub, dict) and "kind" in sub and "containerId" in sub:
                put("cache", dump(sub))
        rc = v.get("runtimeConfig")
        if isinstance(rc, dict):
            put("capability_args", dump(rc))
        t = v.get("type")
        ipam = v.get("ipam")
        if isinstance(ipam, dict) and ipam.get("type") == "host-local" or t == "host-local" or t == "static" or (isinstance(ipam, dict) and ipam.get("type") == "static"):
            put("ipam_config", "\n" + text)
        if t == "tuning" or "sysctl" in v:
            put("tuning", "eth0\n\n" + text)
        if t == "portmap" or (isinstance(rc, dict) and "portMappings" in rc):
            put("portmap", "eth0\n" + text)
        if t in plugins:
            put("plugin", f"{t}\nADD,CHECK,DEL\nc1\neth0\n\n1\n" + text)
            put("plugin", f"{t}\nGC,STATUS\nc1\neth0\n\n1\n" + text)
    # hand-made: the cache file Go's libcni writes, a lease store, capitalised capability args
    conf = json.dumps({"cniVersion": "1.1.0", "name": "net1", "type": "bridge"}).encode()
    import base64
    put("cache", json.dumps({"kind": "cniCacheV1", "containerId": "cid1", "config": base64.b64encode(conf).decode(), "ifName": "eth0",
        "networkName": "net1", "netns": "/run/netns/x", "cniArgs": [["IgnoreUnknown", "1"]], "capabilityArgs": {"portMappings": []},
        "result": {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}], "ips": [{"address": "10.1.2.3/24", "gateway": "10.1.2.1", "interface": 0}]}}))
    put("cache", json.dumps({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.2.3/24"}]}))
    put("lease_store", "c1\neth0\n10.1.2.2\nc2\r\neth0\n===\nlast_reserved_ip.0\n10.1.2.2\n===\n.rcni-by-id/0123456789abcdef-10.1.2.2\n@10.1.2.2\n===\n10.1.2.3\nc1\n===\nfd00:1::2\nc1\r\neth1")
    put("lease_store", "c1\neth0\n10.1.2.1\nc1\r\neth0\n===\n10.1.2.2\nc1\r\neth0\n===\nlast_reserved_ip.1\nfd00:1::7")
    put("capability_args", json.dumps({"PortMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": "127.0.0.1"}],
        "IPRanges": [{"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.1"}], "Bandwidth": {"IngressRate": 1000000, "EgressBurst": 10}, "DNS": {"Servers": ["192.0.2.1"]},
        "ips": ["10.1.0.5/16"], "mac": "02:00:00:00:00:01", "io.kubernetes.cri.pod-annotations": {"a": "b"}, "other": 1}))
    put("tuning", "eth0\nIgnoreUnknown=1;MAC=02:00:00:00:00:11\n" + json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "tuning",
        "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1", "net/core/somaxconn": "512"}, "mtu": 1400, "prevResult": {"cniVersion": "1.0.0"},
        "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "0"}}}}))
    prev = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "10.1.2.3/24", "interface": 0}, {"address": "fd00::3/64", "interface": 0}]}
    put("portmap", "eth0\n" + json.dumps({"cniVersion": "1.1.0", "name": "n", "type": "portmap", "snat": True, "markMasqBit": 13,
        "conditionsV4": ["ip daddr 192.0.2.0/24", "iifname != lo"], "conditionsV6": ["ip6 saddr != fd00::/8"], "prevResult": prev,
        "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80}, {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "0.0.0.0"}]}}))
    for p in plugins:
        put("plugin", f"{p}\nADD,DEL\nc1\neth0\nIgnoreUnknown=1\n2\n" + json.dumps({"cniVersion": "1.1.0", "name": "n", "type": p, "prevResult": prev,
            "cni.dev/valid-attachments": [{"containerID": "c2", "ifname": "eth0"}], "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80}]},
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.2.0/24"}]]}}))
        put("plugin", f"{p}\nVERSION\nc1\neth0\n\n0\n")
    dhcp_seeds()
    print({t: len(os.listdir(os.path.join(CORPUS, t))) for t in sorted(os.listdir(CORPUS))})

def dhcp_message(op, mtype, yiaddr, options, xid=0x12345678, file_opts=b""):
    """A DHCPv4 message: the fixed header, the magic cookie, options (code, bytes), END."""
    import struct
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(yiaddr), bytes(4), bytes(4),
                       bytes([2, 0, 0, 0, 0, 1]) + bytes(10), bytes(64), file_opts.ljust(128, b"\0"))
    body = bytes([99, 130, 83, 99, 53, 1, mtype])
    for code, data in options:
        body += bytes([code, len(data)]) + data
    return head + body + b"\xff"

def dhcp_seeds():
    """The dhcp targets: server answers as dnsmasq sends them, and the daemon's request lines."""
    import struct
    srv, mask, yi = bytes([10, 9, 0, 1]), bytes([255, 255, 255, 0]), [10, 9, 0, 50]
    secs = lambda n: struct.pack("!I", n)
    common = [(54, srv), (1, mask), (3, srv), (51, secs(120)), (58, secs(15)), (59, secs(105))]
    put("dhcp_message", dhcp_message(2, 2, yi, common))
    put("dhcp_message", dhcp_message(2, 5, yi, common + [(6, srv + bytes([8, 8, 8, 8])), (15, b"lan"), (12, b"pod")]))
    put("dhcp_message", dhcp_message(2, 5, yi, common + [(121, bytes([16, 10, 20, 10, 9, 0, 3, 0, 10, 9, 0, 1, 25, 192, 168, 1, 128, 0, 0, 0, 0]))]))
    put("dhcp_message", dhcp_message(2, 5, yi, common + [(33, bytes([10, 30, 0, 1, 10, 9, 0, 4])), (52, bytes([1]))], file_opts=bytes([15, 3]) + b"lan\xff"))
    put("dhcp_message", dhcp_message(2, 6, [0, 0, 0, 0], [(54, srv), (56, b"wrong network")]))
    put("dhcp_message", dhcp_message(1, 1, [0, 0, 0, 0], [(61, b"\0c1/net/eth0"), (55, bytes([1, 3, 51, 58, 59])), (57, struct.pack("!H", 1500))]))
    conf = {"cniVersion": "1.1.0", "name": "net1", "type": "bridge", "bridge": "br0",
            "ipam": {"type": "dhcp", "daemonSocketPath": "/run/cni/dhcp.sock", "priority": 5,
                     "provide": [{"option": "host-name", "fromArg": "K8S_POD_NAME"}, {"option": "60", "value": "rcni"}],
                     "request": [{"option": "classless-static-routes", "skipDefault": False}, {"option": "6"}]}}
    for cmd in ["ADD", "CHECK", "DEL"]:
        put("dhcp_request", json.dumps({"command": cmd, "containerID": "c1", "netns": "/run/netns/c1", "ifname": "eth0",
                                        "args": "IgnoreUnknown=1;K8S_POD_NAME=web-0", "config": conf}))
    put("dhcp_request", json.dumps({"command": "DEL", "containerID": "c1", "ifname": "eth0", "config": {"name": "n", "ipam": {"type": "dhcp"}}}))

main()
