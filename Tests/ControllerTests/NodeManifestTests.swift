import ControllerProtocol
import Foundation
import Node
import Testing

/// The node manifest (untrusted enough: an operator's file that reaches `ip` and `nft`): parsed strictly, every
/// error naming its field, nothing pasted raw into a command or a ruleset.
struct NodeManifestTests {
    static let valid = """
        networks:
          - name: app
            address: 10.77.0.2/24
            host_address: 10.77.0.1/24
            allow:
              - {peer: 10.77.0.1, port: 8443, protocol: tcp}
              - {peer: "fd00::1/128", port: 53, protocol: udp, direction: in}
              - {peer: 10.77.0.1/32, protocol: icmp}
        workloads:
          - name: reader
            command: /bin/sh
            arguments: [-c, "echo hi"]
            environment: {MODE: production, LEVEL: 3}
            secrets: [api-token]
            network: app
            data: reader/data
            restart: always
            max_restarts: 2
            stop_timeout: 1
          - name: plain
            command: /bin/true
        """

    @Test func aValidManifestParses() throws {
        let m = try NodeManifest(yaml: Self.valid)
        #expect(m.networks.count == 1)
        #expect(m.networks[0].allow.count == 3)
        #expect(m.networks[0].allow[0].peer.description == "10.77.0.1/32")
        #expect(m.networks[0].allow[1].peer.isIPv6)
        #expect(m.workloads.map(\.name) == ["reader", "plain"])
        #expect(m.workloads[0].environment == ["MODE": "production", "LEVEL": "3"])
        #expect(m.workloads[0].restart == .always)
        #expect(m.workloads[1].restart == .onFailure && m.workloads[1].maxRestarts == 5)
        #expect(try NodeManifest(yaml: "").workloads.isEmpty)
    }

    @Test(arguments: [
        (
            "workloads: [{name: a, command: /bin/true, restrat: never}]",
            "workloads[0] (manifest:1:43): unknown key \"restrat\""
        ),
        ("workloads: [{name: A, command: /bin/true}]", "workloads[0].name"),
        ("workloads: [{name: a, command: bin/true}]", "workloads[0].command: an absolute path"),
        (
            "workloads: [{name: a, command: /bin/true}, {name: a, command: /bin/true}]",
            "workloads[1].name: a is defined twice"
        ),
        ("workloads: [{name: a, command: /bin/true, secrets: [escrow.v1]}]", "workloads[0].secrets[0]"),
        ("workloads: [{name: a, command: /bin/true, data: ../etc}]", "workloads[0].data"),
        ("workloads: [{name: a, command: /bin/true, data: /etc}]", "workloads[0].data"),
        ("workloads: [{name: a, command: /bin/true, data: .}]", "workloads[0].data"),
        (
            "workloads: [{name: a, command: /bin/true, data: x}, {name: b, command: /bin/true, data: x/y}]",
            "workloads[1].data: x/y overlaps"
        ),
        ("workloads: [{name: a, command: /bin/true, user: \"root; rm\"}]", "workloads[0].user"),
        ("workloads: [{name: a, command: /bin/true, network: nope}]", "workloads[0].network: no network named nope"),
        ("workloads: [{name: a, command: /bin/true, restart: sometimes}]", "workloads[0].restart"),
        ("workloads: [{name: a, command: /bin/true, stop_timeout: 9999}]", "workloads[0].stop_timeout"),
        ("workloads: [{name: a, command: /bin/true, environment: {VIGIL_SECRETS_DIR: /tmp}}]", "VIGIL_* is reserved"),
        (
            "networks: [{name: n, address: 10.0.0.2/24, host_address: 10.0.0.1/24, allow: [{peer: \"10.0.0.1; flush ruleset\", port: 1}]}]",
            "networks[0].allow[0].peer"
        ),
        ("networks: [{name: n, address: 10.0.0.2/33, host_address: 10.0.0.1/24}]", "networks[0].address"),
        ("networks: [{name: n, address: 10.0.0.300, host_address: 10.0.0.1/24}]", "networks[0].address"),
        ("networks: [{name: this-is-long, address: 10.0.0.2/24, host_address: 10.0.0.1/24}]", "networks[0].name"),
        (
            "networks: [{name: n, address: 10.0.0.2/24, host_address: 10.0.0.1/24, allow: [{peer: 10.0.0.1}]}]",
            "networks[0].allow[0].port: required for tcp"
        ),
        (
            "networks: [{name: n, address: 10.0.0.2/24, host_address: 10.0.0.1/24, allow: [{peer: 10.0.0.1, port: 70000}]}]",
            "networks[0].allow[0].port"
        ),
        (
            "networks: [{name: n, address: 10.0.0.2/24, host_address: 10.0.0.1/24, allow: [{peer: 10.0.0.1, port: 1, protocol: sctp}]}]",
            "networks[0].allow[0].protocol"
        ),
        ("workloads: {name: a}", "workloads (manifest:1:12): expected a list"),
        ("- just\n- a list", "manifest (manifest:1:1): expected a mapping"),
        // Found by FuzzNode: Yams' own constructor force-unwraps a non-string key; the hardened tree refuses it.
        ("{[device_id]: 1}", "manifest: not YAML"),
        ("workloads: &a [*a]", "manifest: not YAML"),
        ("workloads: [{name: a, command: /bin/true", "manifest: not YAML"),
    ])
    func aBadManifestIsRefusedNamingTheField(_ yaml: String, _ expected: String) {
        do {
            _ = try NodeManifest(yaml: yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func aNodeReportWithControlCharactersOrAnUnknownPhaseIsRefused() {
        let ok = NodeReport.State(
            phase: "open", gateOpen: true, reason: "passed under fleet@1 → ok", plugins: ["workloads": "running"],
            nextAttestation: nil, attestation: "aa")
        #expect(throws: Never.self) { try ok.validate() }
        var escape = ok
        escape.reason = "gate \u{1B}[32mCLOSED\u{1B}[0m"
        #expect(throws: ControllerProtocolError.self) { try escape.validate() }
        var c1 = ok
        c1.plugins = ["w": "x\u{9B}31m"]
        #expect(throws: ControllerProtocolError.self) { try c1.validate() }
        var phase = ok
        phase.phase = "opened"
        #expect(throws: ControllerProtocolError.self) { try phase.validate() }
    }

    @Test func addressesAreCanonicalisedBeforeTheyReachIPOrNft() {
        #expect(IPAddressPrefix("010.1.1.1") == nil)  // inet_pton refuses leading zeros
        #expect(IPAddressPrefix("fd00:0::1/64")?.description == "fd00::1/64")
        #expect(IPAddressPrefix("10.0.0.1/24 ") == nil)
        #expect(IPAddressPrefix("10.0.0.1/+4") == nil)
        #expect(IPAddressPrefix("") == nil)
    }
}
