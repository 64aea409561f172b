import ArgumentParser
import Attest
import ControllerClient
import ControllerProtocol
import Foundation
import Policy
import SwiftASN1

/// Where the controller is, which CA to trust, and the token to act with.
struct AdminOptions: ParsableArguments {
    @OptionGroup var controllerOptions: ControllerOptions
    @Option(help: "File holding the admin API token (the controller's admin-token, or one from `token create`).")
    var tokenFile: String

    /// Calls `operation` (an ``APIOperation`` id) with the bearer token and decodes the answer.
    func call<T: Decodable>(
        _ type: T.Type, _ operation: String, parameters: [String: String] = [:], body: (some Encodable)? = nil
    ) async throws -> T {
        guard let op = APIOperation.named(operation) else { throw ValidationError("unknown operation \(operation)") }
        var path = op.path
        for (k, v) in parameters { path = path.replacingOccurrences(of: "{\(k)}", with: v) }
        let token = String(decoding: try readInput(tokenFile, limit: 4096), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return try await controllerOptions.withConnection { connection in
            try await connection.call(
                type, method: op.method, path: path, body: try body.map { try APIJSON.encode($0) },
                headers: [("Authorization", "Bearer \(token)")])
        }
    }
}

/// `--ek-fingerprint`: 64 hex digits.
private func parseFingerprint(_ text: String) throws -> EKFingerprint {
    guard let fp = EKFingerprint(text) else { throw ValidationError("--ek-fingerprint: 64 hex digits") }
    return fp
}

private struct NoBody: Encodable {}
private let noBody: NoBody? = nil
private struct Count: Decodable { var count: Int }
private struct Version: Decodable { var version: Int }
private struct Empty: Decodable {}

/// `vigil admin …`: the security team's commands.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "The security team's controller API.",
        subcommands: [
            PolicyGroup.self, DeviceGroup.self, EnrollTokenGroup.self, SecretGroup.self, AuditGroup.self,
            TokenGroup.self, EKCAGroup.self, EVEGroup.self,
        ])

    struct PolicyGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "policy", abstract: "Policies: add versions, assign, list.",
            subcommands: [Add.self, Assign.self, List.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Lint and store a new version of a policy.")
            @Argument(help: "The policy's name at the controller.") var name: String
            @Argument(help: "The policy file (YAML).") var file: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    let yaml = String(decoding: try readInput(file, limit: 1 << 20), as: UTF8.self)
                    // The files it extends go with it (found as `<id>.yaml` beside it, as `policy lint` finds them).
                    var parents: [String] = []
                    var current = try PolicyLoader.parseFile(file)
                    let folder = (file as NSString).deletingLastPathComponent
                    while let parentID = current.extends, parents.count < 8 {
                        let path = (folder as NSString).appendingPathComponent("\(parentID).yaml")
                        parents.append(String(decoding: try readInput(path, limit: 1 << 20), as: UTF8.self))
                        current = try PolicyLoader.parseFile(path)
                    }
                    let v = try await admin.call(
                        Admin.PolicyVersion.self, "policyAdd", parameters: ["name": name],
                        body: Admin.PolicyUpload(yaml: yaml, parents: parents.isEmpty ? nil : parents))
                    print("policy \(v.name) version \(v.version) (sha256 \(v.sha256))")
                }
            }
        }

        struct Assign: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Pin a policy version (default: the latest) to a device or a group.")
            @Argument(help: "The policy's name.") var name: String
            @Option(help: "A device id.") var device: String?
            @Option(help: "A group.") var group: String?
            @Option(help: "The version (default: the latest).") var version: Int?
            @OptionGroup var admin: AdminOptions
            func validate() throws {
                guard (device == nil) != (group == nil) else { throw ValidationError("give --device or --group") }
                if let device, DeviceID(device) == nil { throw ValidationError("--device: not a device id") }
            }
            func run() async throws {
                try await reportingErrors {
                    let v = try await admin.call(
                        Admin.PolicyVersion.self, "policyAssign", parameters: ["name": name],
                        body: Admin.PolicyAssignment(
                            device: device.flatMap(DeviceID.init), group: group, version: version))
                    print("\(v.name)@\(v.version) assigned to \(v.assignedTo.joined(separator: ", "))")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every policy version and its assignments.")
            @OptionGroup var admin: AdminOptions
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await reportingErrors {
                    let list = try await admin.call([Admin.PolicyVersion].self, "policyList", body: noBody)
                    if json {
                        try printAPIJSON(list)
                    } else {
                        for v in list {
                            print(
                                "\(v.name)@\(v.version)  sha256 \(v.sha256.prefix(16))…  \(v.assignedTo.joined(separator: ", "))"
                            )
                        }
                    }
                }
            }
        }
    }

    struct DeviceGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "device", abstract: "Devices: allow, list, show, revoke.",
            subcommands: [Allow.self, Disallow.self, List.self, Show.self, Revoke.self])

        struct Allow: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Admit a TPM by its EK fingerprint.")
            @Option(help: "SHA-256 of the EK's SubjectPublicKeyInfo, hex.") var ekFingerprint: String
            @Option(help: "The group it joins.") var group: String?
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    let fp = try parseFingerprint(ekFingerprint)
                    _ = try await admin.call(
                        Empty.self, "deviceAllow", body: Admin.AllowEK(ekFingerprint: fp, group: group))
                    print("EK \(fp) allowed (device \(DeviceID(ekFingerprint: fp)))")
                }
            }
        }

        struct Disallow: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Withdraw an EK fingerprint's admission (an onboarded device stays: revoke it).")
            @Option(help: "SHA-256 of the EK's SubjectPublicKeyInfo, hex.") var ekFingerprint: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    let fp = try parseFingerprint(ekFingerprint)
                    _ = try await admin.call(
                        Empty.self, "deviceDisallow", body: Admin.AllowEK(ekFingerprint: fp, group: nil))
                    print("EK \(fp) no longer admitted")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Devices, their last verdict and failed rules.")
            @OptionGroup var admin: AdminOptions
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await reportingErrors {
                    let list = try await admin.call([Admin.DeviceSummary].self, "deviceList", body: noBody)
                    if json {
                        try printAPIJSON(list)
                    } else {
                        for d in list {
                            let last =
                                d.last.map { l in
                                    "\(l.pass ? "PASS" : "FAIL") \(l.at)"
                                        + (l.refusal.map { " refused: \($0)" } ?? "")
                                        + (l.failures.isEmpty
                                            ? "" : " failed: " + l.failures.map(\.rule).joined(separator: ", "))
                                } ?? "never attested"
                            print("\(d.deviceID)  \(d.status)  group \(d.group)  policy \(d.policy ?? "-")  \(last)")
                        }
                    }
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A device's verdict history.")
            @Argument(help: "The device id.") var id: String
            @OptionGroup var admin: AdminOptions
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await reportingErrors {
                    guard DeviceID(id) != nil else { throw ValidationError("not a device id") }
                    let d = try await admin.call(
                        Admin.DeviceDetail.self, "deviceShow", parameters: ["id": id], body: noBody)
                    if json {
                        try printAPIJSON(d)
                    } else {
                        print(
                            "\(d.summary.deviceID)  \(d.summary.status)  group \(d.summary.group)  policy \(d.summary.policy ?? "-")"
                        )
                        if let eve = d.eve {
                            print(
                                "EVE device \(eve.uuid)  serial \(eve.serial.debugDescription)  certificate \(eve.deviceCertificateSubject)  registered \(d.onboardedAt)"
                            )
                            print(
                                "identity: the AK is vouched for by the device certificate only (EVE's API has no credential activation: AK-EK co-residence is NOT proven)"
                            )
                            for (type, subject) in eve.certificates.sorted(by: { $0.key < $1.key }) {
                                print("  certificate \(type): \(subject)")
                            }
                        } else {
                            print(
                                "EK \(d.ekFingerprint.map { "\($0)" } ?? "-")  AK \(d.akName ?? "-")  onboarded \(d.onboardedAt)"
                            )
                        }
                        if let node = d.node {
                            // The node's own account (not a verdict): what its agent last reported.
                            print(
                                "node (reported \(d.nodeReportedAt.map { "\($0)" } ?? "?")): gate \(node.gateOpen ? "OPEN" : "CLOSED"), phase \(node.phase): \(node.reason)"
                            )
                            for (name, state) in node.plugins.sorted(by: { $0.key < $1.key }) {
                                print("  plugin \(name): \(state)")
                            }
                        }
                        for a in d.history {
                            print(
                                "  \(a.at)  \(a.pass ? "PASS" : "FAIL")  \(a.policy ?? "-")\(a.refusal.map { "  refused: \($0)" } ?? "")"
                            )
                            for f in a.failures {
                                print(
                                    "    \(f.rule)\(f.bank.map { " \($0)" } ?? "")\(f.pcr.map { " PCR \($0)" } ?? "")\(f.event.map { " event \($0)" } ?? ""): expected \(f.expected), got \(f.actual)"
                                )
                            }
                        }
                    }
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Revoke a device: results stop being accepted, secrets stop being released.")
            @Argument(help: "The device id.") var id: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    guard DeviceID(id) != nil else { throw ValidationError("not a device id") }
                    _ = try await admin.call(Empty.self, "deviceRevoke", parameters: ["id": id], body: noBody)
                    print("\(id) revoked")
                }
            }
        }
    }

    struct EnrollTokenGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll-token", abstract: "One-time enrollment tokens.",
            subcommands: [Create.self, Revoke.self])
        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Cancel an unused enrollment token.")
            @Argument(help: "The token, as `create` printed it.") var token: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    _ = try await admin.call(
                        Empty.self, "enrollTokenRevoke", body: Admin.EnrollTokenRevoke(token: token))
                    print("enrollment token revoked")
                }
            }
        }
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create one; prints only the token.")
            @Option(help: "The group a device enrolled with it joins.") var group: String?
            @Option(help: "Lifetime: 90s, 30m, 1h, 7d.") var expires = "1h"
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    guard let seconds = durationSeconds(expires) else {
                        throw ValidationError("--expires: a number with s, m, h or d (1h)")
                    }
                    let t = try await admin.call(
                        Admin.IssuedToken.self, "enrollTokenCreate",
                        body: Admin.EnrollTokenRequest(group: group, expiresInSeconds: seconds))
                    print(t.token)
                }
            }
        }
    }

    struct SecretGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "secret", abstract: "Secrets released to devices that pass.", subcommands: [Put.self])
        struct Put: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Store a new version of a device's secret.")
            @Argument(help: "The secret's name.") var name: String
            @Option(help: "The device id.") var device: String
            @Option(help: "The file holding the secret (at most 64 KiB).") var file: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    guard let id = DeviceID(device) else { throw ValidationError("--device: not a device id") }
                    var bytes = try readInput(file, limit: SecretEnvelope.maximumSecretSize)
                    defer { for i in bytes.indices { bytes[i] = 0 } }
                    let v = try await admin.call(
                        Version.self, "secretPut", parameters: ["name": name],
                        body: Admin.SecretUpload(device: id, value: Data(bytes).base64EncodedString()))
                    print("secret \(name) version \(v.version) for \(id)")
                }
            }
        }
    }

    struct AuditGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit", abstract: "The hash-chained audit log.", subcommands: [Verify.self])
        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Recompute the chain: exit 0 if intact, 1 naming the first broken entry.")
            @OptionGroup var admin: AdminOptions
            @Flag(help: "JSON.") var json = false
            func run() async throws {
                try await reportingErrors {
                    let r = try await admin.call(Admin.AuditReport.self, "auditVerify", body: noBody)
                    if json {
                        try printAPIJSON(r)
                    } else if r.intact {
                        print("audit log intact: \(r.entries) entries")
                    } else {
                        print("audit log BROKEN at entry \(r.firstBroken ?? 0): \(r.reason ?? "")")
                    }
                    if !r.intact { throw ExitCode(1) }
                }
            }
        }
    }

    struct TokenGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "API tokens with roles.", subcommands: [Create.self])
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a token: viewer, operator, policy-admin or admin. Prints only the token.")
            @Option(help: "The role.") var role: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    guard let r = Admin.Role(rawValue: role) else {
                        throw ValidationError("--role: viewer, operator, policy-admin or admin")
                    }
                    let t = try await admin.call(
                        Admin.IssuedToken.self, "tokenCreate", body: Admin.TokenRequest(role: r))
                    print(t.token)
                }
            }
        }
    }

    struct EVEGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eve", abstract: "EVE devices attesting through EVE's own API (/api/v2/edgedevice/...).",
            subcommands: [Preregister.self, Unregister.self])
        struct Unregister: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Delete an EVE device's registration (its verdict history stays): frees its onboarding certificate, serial and device certificate."
            )
            @Argument(help: "The EVE device's UUID (vigil admin device show prints it).") var uuid: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    _ = try await admin.call(Empty.self, "eveUnregister", parameters: ["uuid": uuid], body: noBody)
                    print("EVE device \(uuid) unregistered")
                }
            }
        }
        struct Preregister: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Allow EVE devices with this onboarding certificate and/or serial to register.",
                discussion: """
                    With only --onboarding-cert, any serial may register with that certificate; with only --serial, \
                    that serial with any onboarding certificate; with both, only that pair. A device that registers \
                    without a matching pre-registration is answered 403.
                    """)
            @Option(help: "The onboarding certificate (PEM), as the device sends it in senderCert.") var onboardingCert:
                String?
            @Option(help: "The device's hardware serial.") var serial: String?
            @Option(help: "The group the devices join (its policy judges them).") var group: String?
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    guard onboardingCert != nil || serial != nil else {
                        throw ValidationError("give --onboarding-cert, --serial, or both")
                    }
                    let pem = try onboardingCert.map { try String(contentsOfFile: $0, encoding: .utf8) }
                    _ = try await admin.call(
                        Empty.self, "evePreregister",
                        body: Admin.EVEPreregistration(onboardingCertificate: pem, serial: serial, group: group))
                    print(
                        "EVE pre-registration stored: onboarding certificate \(onboardingCert ?? "any"), serial \(serial ?? "any"), group \(group ?? "default")"
                    )
                }
            }
        }
    }

    struct EKCAGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ek-ca", abstract: "Named bundles of EK CA certificates.", subcommands: [Add.self])
        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Upload a folder of vendor CA certificates (PEM or DER) as bundle NAME.")
            @Argument(help: "The bundle's name (a policy's identity.ek_ca names it).") var name: String
            @Argument(help: "The folder.") var dir: String
            @OptionGroup var admin: AdminOptions
            func run() async throws {
                try await reportingErrors {
                    let anchors = try EKTrustAnchors(folder: dir)
                    let certs = (anchors.roots + anchors.intermediates).map { cert in
                        (try? cert.serializeAsPEM().pemString) ?? ""
                    }
                    let c = try await admin.call(
                        Count.self, "ekCAPut", parameters: ["name": name],
                        body: Admin.EKCABundleUpload(certificates: certs))
                    print("EK CA bundle \(name): \(c.count) certificates (\(anchors.roots.count) roots)")
                }
            }
        }
    }
}
