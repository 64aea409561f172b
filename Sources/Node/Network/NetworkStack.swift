import Foundation
import Synchronization

/// The network-stack plugin: for each network of the manifest, a network namespace (`vigil-NAME`) joined to the
/// host by a veth pair (`vgh-NAME` on the host, `vgn-NAME` inside) with the manifest's addresses, and an nftables
/// table inside the namespace that drops everything but loopback, replies, and the manifest's allowed peers and
/// ports. Created only when the gate opens, deleted when it closes; workloads on a network run inside its
/// namespace. Needs root (CAP_NET_ADMIN), `ip` (iproute2) and `nft` (nftables).
public final class NetworkStack: NodePlugin {
    /// `network`.
    public let name = "network"
    let networks: [NodeManifest.Network]
    private let up = Mutex<[String]>([])
    private let runtime = Mutex<RuntimeRecord?>(nil)

    /// The stack for `networks`.
    public init(networks: [NodeManifest.Network]) { self.networks = networks }

    /// Nothing from the core but the gate.
    public var requirements: PluginRequirements { PluginRequirements() }

    /// Manifest name → namespace.
    public var providedNetworks: [String: String] {
        Dictionary(uniqueKeysWithValues: networks.map { ($0.name, Self.namespace($0.name)) })
    }

    /// The namespace of network `name`.
    public static func namespace(_ name: String) -> String { "vigil-" + name }
    static func hostLink(_ name: String) -> String { "vgh-" + name }
    static func innerLink(_ name: String) -> String { "vgn-" + name }

    /// Creates each network: namespace, veth pair, addresses, the nftables table inside.
    public func start(_ context: PluginContext) async throws {
        runtime.withLock { $0 = context.runtime }
        for n in networks {
            let ns = Self.namespace(n.name)
            let host = Self.hostLink(n.name)
            let inner = Self.innerLink(n.name)
            try await context.runtime.willCreateNetwork(namespace: ns, link: host)
            // A leftover of the same name (a crash between record and cleanup) is replaced, not joined.
            _ = try? SystemTool.run(["ip", "link", "del", host])
            _ = try? SystemTool.run(["ip", "netns", "del", ns])
            try SystemTool.run(["ip", "netns", "add", ns])
            up.withLock { $0.append(n.name) }
            try SystemTool.run(["ip", "link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns])
            try SystemTool.run(["ip", "addr", "add", n.hostAddress.description, "dev", host])
            try SystemTool.run(["ip", "link", "set", host, "up"])
            try SystemTool.run(["ip", "-n", ns, "link", "set", "lo", "up"])
            try SystemTool.run(["ip", "-n", ns, "addr", "add", n.address.description, "dev", inner])
            try SystemTool.run(["ip", "-n", ns, "link", "set", inner, "up"])
            try SystemTool.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input: Self.ruleset(n))
        }
    }

    /// The nftables ruleset inside a network's namespace. Every value in it was parsed (addresses with
    /// inet_pton, ports as integers, protocols from a fixed list), so nothing from the manifest is pasted raw.
    static func ruleset(_ n: NodeManifest.Network) -> String {
        var input: [String] = []
        var output: [String] = []
        for r in n.allow {
            let family = r.peer.isIPv6 ? "ip6" : "ip"
            let match: String
            switch r.proto {
            case "icmp": match = r.peer.isIPv6 ? "meta l4proto ipv6-icmp" : "meta l4proto icmp"
            default: match = "\(r.proto) dport \(r.port ?? 0)"
            }
            if r.direction == "out" {
                output.append("\(family) daddr \(r.peer) \(match) accept")
            } else {
                input.append("\(family) saddr \(r.peer) \(match) accept")
            }
        }
        return """
            table inet vigil {
              chain input {
                type filter hook input priority 0; policy drop;
                iif "lo" accept
                ct state established,related accept
            \(input.map { "    " + $0 }.joined(separator: "\n"))
              }
              chain output {
                type filter hook output priority 0; policy drop;
                oif "lo" accept
                ct state established,related accept
            \(output.map { "    " + $0 }.joined(separator: "\n"))
              }
              chain forward {
                type filter hook forward priority 0; policy drop;
              }
            }

            """
    }

    /// Deletes each network (anything still inside its namespace is killed first).
    public func stop(deadline: Duration) async {
        let names = up.withLock { names in
            defer { names.removeAll() }
            return names
        }
        let record = runtime.withLock { $0 }
        for name in names.reversed() {
            let ns = Self.namespace(name)
            // Anything still inside (a workload that outlived its manager) goes with the namespace.
            if let pids = try? SystemTool.run(["ip", "netns", "pids", ns]) {
                for p in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(p, SIGKILL) }
            }
            _ = try? SystemTool.run(["ip", "link", "del", Self.hostLink(name)])
            _ = try? SystemTool.run(["ip", "netns", "del", ns])
            try? await record?.deletedNetwork(namespace: ns, link: Self.hostLink(name))
        }
    }

    /// `up: vigil-…` or `stopped`.
    public func state() async -> String {
        let names = up.withLock { $0 }
        return names.isEmpty ? "stopped" : "up: " + names.map { Self.namespace($0) }.joined(separator: ", ")
    }
}
