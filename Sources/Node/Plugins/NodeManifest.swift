public import ControllerProtocol
import Foundation
import Policy

#if canImport(Glibc)
    import Glibc
#endif

/// The node's manifest (`vigil node run --manifest FILE`): the networks the network stack creates and the
/// workloads the workload manager runs, once the gate opens.
///
/// ```yaml
/// networks:
///   - name: app                      # namespace vigil-app, links vgh-app (host) / vgn-app (inside)
///     address: 10.77.0.2/24          # inside the namespace
///     host_address: 10.77.0.1/24     # the host end
///     allow:                         # nftables inside the namespace: everything else is dropped
///       - {peer: 10.77.0.1/32, port: 8443, protocol: tcp}              # outbound
///       - {peer: 10.77.0.1/32, port: 9000, protocol: tcp, direction: in}
/// workloads:
///   - name: reader
///     command: /usr/bin/python3
///     arguments: [-m, app]
///     environment: {MODE: production}
///     secrets: [api-token]           # files in $VIGIL_SECRETS_DIR (a private tmpfs), 0600
///     network: app                   # runs inside vigil-app
///     data: reader                   # $VIGIL_DATA_DIR = <first vault>/reader
///     restart: on-failure            # never | on-failure | always
///     max_restarts: 5
///     stop_timeout: 5                # seconds between SIGTERM and SIGKILL
/// ```
public struct NodeManifest: Sendable, Hashable {
    /// A network.
    public struct Network: Sendable, Hashable {
        /// Its name: 1–10 of `a-z 0-9`.
        public var name: String
        /// The namespace end's address, CIDR.
        public var address: IPAddressPrefix
        /// The host end's address, CIDR.
        public var hostAddress: IPAddressPrefix
        /// What the namespace may talk to.
        public var allow: [AllowRule]
    }

    /// One allowed flow.
    public struct AllowRule: Sendable, Hashable {
        /// The peer, CIDR.
        public var peer: IPAddressPrefix
        /// The port (nil: any, only for icmp).
        public var port: Int?
        /// `tcp`, `udp` or `icmp`.
        public var proto: String
        /// `out` (the namespace connects to the peer) or `in` (the peer connects to the namespace).
        public var direction: String
    }

    /// When a workload is restarted.
    public enum RestartPolicy: String, Sendable, Hashable {
        case never
        case onFailure = "on-failure"
        case always
    }

    /// A workload.
    public struct Workload: Sendable, Hashable {
        /// Its name: 1–32 of `a-z 0-9 - _`.
        public var name: String
        /// The executable, absolute path.
        public var command: String
        /// Its arguments.
        public var arguments: [String]
        /// Extra environment.
        public var environment: [String: String]
        /// Secrets it sees as files.
        public var secrets: [SecretName]
        /// The network it runs in (nil: the host's).
        public var network: String?
        /// Its data directory inside the first vault (nil: none).
        public var data: String?
        /// When it is restarted.
        public var restart: RestartPolicy
        /// At most this many restarts per gate opening.
        public var maxRestarts: Int
        /// Seconds from SIGTERM to SIGKILL.
        public var stopTimeout: Double
        /// The user it runs as (nil: root, still without any capability).
        public var user: String?
    }

    /// The networks.
    public var networks: [Network]
    /// The workloads.
    public var workloads: [Workload]

    /// An empty manifest.
    public init(networks: [Network] = [], workloads: [Workload] = []) {
        self.networks = networks
        self.workloads = workloads
    }

    /// The largest manifest read.
    public static let maximumSize = 1 << 20

    /// Parses a manifest; every error names the field (`workloads[1].restart`).
    public init(yaml text: String) throws(NodeError) {
        guard text.utf8.count <= Self.maximumSize else { throw NodeError("manifest: larger than 1 MiB") }
        if text.allSatisfy({ $0.isWhitespace }) {
            self.init()
            return
        }
        // The policy files' hardened YAML tree: size, depth and alias limits, no duplicate keys, locations.
        let root: PolicyNode
        do { root = try PolicyNode.parse(text, file: "manifest") } catch {
            throw NodeError("manifest: not YAML: \(error.description)")
        }
        let top = try Self.mapping(root, "manifest", ["networks", "workloads"])
        var networks: [Network] = []
        for (i, item) in try Self.list(top["networks"], "networks").enumerated() {
            let f = "networks[\(i)]"
            let m = try Self.mapping(item, f, ["name", "address", "host_address", "allow"])
            let name = try Self.string(m["name"], "\(f).name")
            guard (1...10).contains(name.utf8.count),
                name.utf8.allSatisfy({ (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) })
            else {
                throw NodeError(
                    "\(f).name: 1–10 characters of a-z and 0-9 (it names links), not \(name.prefix(40).debugDescription)"
                )
            }
            guard !networks.contains(where: { $0.name == name }) else {
                throw NodeError("\(f).name: \(name) is defined twice")
            }
            let address = try Self.prefix(m["address"], "\(f).address")
            let host = try Self.prefix(m["host_address"], "\(f).host_address")
            var allow: [AllowRule] = []
            for (j, a) in try Self.list(m["allow"], "\(f).allow").enumerated() {
                let g = "\(f).allow[\(j)]"
                let r = try Self.mapping(a, g, ["peer", "port", "protocol", "direction"])
                let proto =
                    try r["protocol"].map { v throws(NodeError) in try Self.string(v, "\(g).protocol") } ?? "tcp"
                guard ["tcp", "udp", "icmp"].contains(proto) else {
                    throw NodeError("\(g).protocol: tcp, udp or icmp, not \(proto.prefix(20))")
                }
                let direction =
                    try r["direction"].map { v throws(NodeError) in try Self.string(v, "\(g).direction") } ?? "out"
                guard ["in", "out"].contains(direction) else {
                    throw NodeError("\(g).direction: in or out, not \(direction.prefix(20))")
                }
                let port = try r["port"].map { v throws(NodeError) in try Self.int(v, "\(g).port", 1...65535) }
                guard port != nil || proto == "icmp" else { throw NodeError("\(g).port: required for \(proto)") }
                guard port == nil || proto != "icmp" else { throw NodeError("\(g).port: icmp has no ports") }
                let peer = try Self.prefix(r["peer"], "\(g).peer")
                allow.append(AllowRule(peer: peer, port: port, proto: proto, direction: direction))
            }
            networks.append(Network(name: name, address: address, hostAddress: host, allow: allow))
        }
        var workloads: [Workload] = []
        for (i, item) in try Self.list(top["workloads"], "workloads").enumerated() {
            let f = "workloads[\(i)]"
            let m = try Self.mapping(
                item, f,
                [
                    "name", "command", "arguments", "environment", "secrets", "network", "data", "restart",
                    "max_restarts", "stop_timeout", "user",
                ])
            let name = try Self.string(m["name"], "\(f).name")
            guard (1...32).contains(name.utf8.count),
                name.utf8.allSatisfy({
                    (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d || $0 == 0x5f
                })
            else {
                throw NodeError(
                    "\(f).name: 1–32 characters of a-z, 0-9, - and _, not \(name.prefix(40).debugDescription)")
            }
            guard !workloads.contains(where: { $0.name == name }) else {
                throw NodeError("\(f).name: \(name) is defined twice")
            }
            let command = try Self.string(m["command"], "\(f).command")
            guard command.hasPrefix("/"), !command.contains("\0") else {
                throw NodeError("\(f).command: an absolute path")
            }
            let arguments = try Self.list(m["arguments"], "\(f).arguments").enumerated().map { j, a throws(NodeError) in
                let argument = try Self.string(a, "\(f).arguments[\(j)]")
                guard !argument.contains("\0") else { throw NodeError("\(f).arguments[\(j)]: contains a NUL byte") }
                return argument
            }
            var environment: [String: String] = [:]
            if let e = m["environment"] {
                for (k, v) in try Self.mapping(e, "\(f).environment", nil) {
                    guard !k.isEmpty, !k.contains("="), !k.contains("\0"), !k.hasPrefix("VIGIL_") else {
                        throw NodeError(
                            "\(f).environment: \(k.prefix(40).debugDescription) is not a valid name (VIGIL_* is reserved)"
                        )
                    }
                    let value = try Self.scalar(v, "\(f).environment.\(k)")
                    guard !value.contains("\0") else { throw NodeError("\(f).environment.\(k): contains a NUL byte") }
                    environment[k] = value
                }
            }
            let secrets = try Self.list(m["secrets"], "\(f).secrets").enumerated().map { j, s throws(NodeError) in
                let text = try Self.string(s, "\(f).secrets[\(j)]")
                guard let n = SecretName(text), !text.hasPrefix(Escrow.namePrefix) else {
                    throw NodeError(
                        "\(f).secrets[\(j)]: \(text.prefix(40).debugDescription) is not a secret name (escrow.* are the vault's)"
                    )
                }
                return n
            }
            let network = try m["network"].map { v throws(NodeError) in try Self.string(v, "\(f).network") }
            if let network, !networks.contains(where: { $0.name == network }) {
                throw NodeError("\(f).network: no network named \(network.prefix(40)) in networks")
            }
            let data = try m["data"].map { v throws(NodeError) in try Self.string(v, "\(f).data") }
            if let data {
                let parts = data.split(separator: "/")
                guard !data.isEmpty, !data.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."), !parts.contains("."),
                    !data.contains("\0")
                else {
                    throw NodeError("\(f).data: a relative path inside the vault, without . or ..")
                }
            }
            let restartText =
                try m["restart"].map { v throws(NodeError) in try Self.string(v, "\(f).restart") } ?? "on-failure"
            guard let restart = RestartPolicy(rawValue: restartText) else {
                throw NodeError("\(f).restart: never, on-failure or always, not \(restartText.prefix(20))")
            }
            let maxRestarts =
                try m["max_restarts"].map { v throws(NodeError) in try Self.int(v, "\(f).max_restarts", 0...1000) } ?? 5
            let stopTimeout =
                try m["stop_timeout"].map { v throws(NodeError) in Double(try Self.int(v, "\(f).stop_timeout", 0...300))
                } ?? 5
            let user = try m["user"].map { v throws(NodeError) in try Self.string(v, "\(f).user") }
            if let user {
                guard (1...32).contains(user.utf8.count),
                    user.utf8.allSatisfy({
                        (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d || $0 == 0x5f
                    })
                else { throw NodeError("\(f).user: a user name or uid, not \(user.prefix(40).debugDescription)") }
            }
            if let data,
                workloads.contains(where: { w in
                    guard let other = w.data else { return false }
                    return other == data || data.hasPrefix(other + "/") || other.hasPrefix(data + "/")
                })
            {
                throw NodeError("\(f).data: \(data) overlaps another workload's data directory")
            }
            workloads.append(
                Workload(
                    name: name, command: command, arguments: arguments, environment: environment, secrets: secrets,
                    network: network, data: data, restart: restart, maxRestarts: maxRestarts, stopTimeout: stopTimeout,
                    user: user))
        }
        self.init(networks: networks, workloads: workloads)
    }

    // MARK: Reading the YAML tree

    static func mapping(_ node: PolicyNode, _ field: String, _ allowed: Set<String>?) throws(NodeError)
        -> [String: PolicyNode]
    {
        guard case .mapping(let pairs, _) = node else {
            throw NodeError("\(field) (\(node.location)): expected a mapping")
        }
        var m: [String: PolicyNode] = [:]
        for pair in pairs {
            if let allowed, !allowed.contains(pair.key) {
                throw NodeError(
                    "\(field) (\(pair.keyLocation)): unknown key \(pair.key.prefix(40).debugDescription) (allowed: \(allowed.sorted().joined(separator: ", ")))"
                )
            }
            m[pair.key] = pair.value
        }
        return m
    }
    static func list(_ node: PolicyNode?, _ field: String) throws(NodeError) -> [PolicyNode] {
        guard let node else { return [] }
        guard case .sequence(let l, _) = node else { throw NodeError("\(field) (\(node.location)): expected a list") }
        guard l.count <= 256 else { throw NodeError("\(field) (\(node.location)): more than 256 entries") }
        return l
    }
    static func string(_ node: PolicyNode?, _ field: String) throws(NodeError) -> String {
        guard let node else { throw NodeError("\(field): missing") }
        guard case .scalar(let s, _) = node else { throw NodeError("\(field) (\(node.location)): expected a string") }
        guard s.utf8.count <= 4096 else { throw NodeError("\(field) (\(node.location)): longer than 4096 bytes") }
        return s
    }
    static func scalar(_ node: PolicyNode, _ field: String) throws(NodeError) -> String { try string(node, field) }
    static func int(_ node: PolicyNode, _ field: String, _ range: ClosedRange<Int>) throws(NodeError) -> Int {
        guard case .scalar(let s, _) = node, let i = Int(s), range.contains(i) else {
            throw NodeError("\(field) (\(node.location)): an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return i
    }
    static func prefix(_ node: PolicyNode?, _ field: String) throws(NodeError) -> IPAddressPrefix {
        let text = try string(node, field)
        guard let p = IPAddressPrefix(text) else {
            throw NodeError("\(field): \(text.prefix(60).debugDescription) is not an address/prefix")
        }
        return p
    }
}

/// An IPv4 or IPv6 address with a prefix length (`10.77.0.2/24`, `fd00::1/64`; a bare address is /32 or /128),
/// parsed with inet_pton so only a well-formed address reaches `ip` or an nftables rule.
public struct IPAddressPrefix: Sendable, Hashable, CustomStringConvertible {
    /// The address, canonical text.
    public let address: String
    /// The prefix length.
    public let length: Int
    /// Whether it is IPv6.
    public let isIPv6: Bool

    /// Parses `text`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts[0].utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        var v6 = in6_addr()
        let host = String(parts[0])
        if inet_pton(AF_INET, host, &v4) == 1 {
            isIPv6 = false
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            isIPv6 = true
        } else {
            return nil
        }
        let max = isIPv6 ? 128 : 32
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...max).contains(l), parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) })
            else { return nil }
            length = l
        } else {
            length = max
        }
        var buffer = [CChar](repeating: 0, count: 64)
        let ok = isIPv6 ? inet_ntop(AF_INET6, &v6, &buffer, 64) : inet_ntop(AF_INET, &v4, &buffer, 64)
        guard ok != nil else { return nil }
        address = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `address/length`.
    public var description: String { "\(address)/\(length)" }
}
