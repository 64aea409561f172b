import ArgumentParser
import Attest
import AttestTPM
import ControllerClient
import ControllerProtocol
import Crypto
import Foundation
import Node
import SystemSupport
import Vault

/// `vigil vault …`: directories encrypted with fscrypt under a key sealed in the TPM to PCR values.
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault", abstract: "TPM-sealed vaults (fscrypt directories).",
        subcommands: [
            Create.self, Unlock.self, Lock.self, Status.self, Reseal.self, Escrow.self, Recover.self,
            ApprovePCRs.self, RevokeApprovals.self, Predict.self, Rotate.self,
        ])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt an empty directory under a new key sealed to the TPM's PCRs (left unlocked).")
        @Option(help: "Backend: fscrypt (a directory) or luks2 (an image file or block device).") var backend =
            "fscrypt"
        @Option(help: "luks2: create the image file with this size (64M, 1G) when it does not exist.") var size: String?
        @Option(help: "SHA-256 PCRs to seal to (default 0-4,6-14).") var pcrs: String?
        @Argument(help: "The vault: an empty directory on ext4 with encryption (fscrypt), or an image/device (luks2).")
        var path: String
        @Option(
            help: "The event log, recorded so status can later name the events that changed (default: the kernel's).")
        var eventlog: String?
        @Option(help: "Escrow the key at this controller (https://HOST:PORT); needs --ca and a passing attestation.")
        var controller: String?
        @Option(help: "The controller's CA certificate (with --controller).") var ca: String?
        @Option(
            help:
                "Seal to signed approvals instead of PCR values: the security team's P-256 public key (PEM); approvals from vigil vault approve-pcrs open it."
        )
        var authorizeKey: String?
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                guard backend == "fscrypt" || backend == "luks2" else {
                    throw ValidationError("--backend: fscrypt or luks2")
                }
                let list = try pcrs.map(parsePCRList) ?? PCRSealedKey.defaultPCRs
                let bytes = try size.map { text in
                    guard let n = byteCount(text) else { throw ValidationError("--size: bytes with K, M or G (64M)") }
                    return n
                }
                let tpm = try await tpmOptions.open()
                let bootLog = try readBootLog(eventlog)
                let authority = try authorizeKey.map { file in
                    try P256.Signing.PublicKey(
                        pemRepresentation: String(decoding: try readInput(file, limit: 64 * 1024), as: UTF8.self))
                }
                let backend = backend
                let path = path
                let sealedPCRs = list
                let create = { @Sendable (escrow: EscrowDepositor?) async throws -> (VaultMetadata, SecretBytes?) in
                    if backend == "luks2" {
                        let c = try await LUKS2Vault(path: path).create(
                            tpm: tpm, size: bytes, pcrs: sealedPCRs, bootLog: bootLog.log, escrow: escrow,
                            authority: authority)
                        return (c.metadata, c.recoveryPassphrase)
                    }
                    let m = try await FSCryptVault(path: path).create(
                        tpm: tpm, pcrs: sealedPCRs, bootLog: bootLog.log, escrow: escrow, authority: authority)
                    return (m, nil)
                }
                let (m, recovery): (VaultMetadata, SecretBytes?)
                if let connection = try escrowConnection(controller: controller, ca: ca) {
                    (m, recovery) = try await connection.withConnection { connection in
                        try await create(
                            try await VaultRecovery.depositor(agent: DeviceAgent(tpm: tpm, connection: connection)))
                    }
                } else {
                    (m, recovery) = try await create(nil)
                }
                let sealedTo =
                    (m.sealing.authorization.map { "approvals signed by \($0.authorityName.prefix(20))… of " } ?? "")
                    + "sha256:\(m.sealing.pcrs.map(String.init).joined(separator: ","))"
                if let recovery {
                    print(
                        "vault \(path): LUKS2 (aes-xts-plain64), \(m.keyIdentifier) opened by a TPM key sealed to \(sealedTo)"
                    )
                    print("recovery passphrase (keyslot 1), shown this once; keep it offline:")
                    recovery.withUnsafeBytes { print("  " + String(decoding: $0, as: UTF8.self)) }
                } else {
                    print(
                        "vault \(path): fscrypt v2 (AES-256-XTS/CTS), key \(m.keyIdentifier) sealed to \(sealedTo); unlocked"
                    )
                }
                print(
                    m.escrow.map { "escrowed at the controller as \($0.name) v\($0.version)" }
                        ?? "not escrowed: if the PCRs change it cannot be recovered (vigil vault escrow PATH --controller …)"
                )
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Unseal the key (the PCRs must be those at seal time, or those a signed approval names) and unlock the directory."
        )
        @Argument(help: "The vault directory.") var path: String
        @Option(help: "A signed approval (vigil vault approve-pcrs), for a vault sealed to approvals; repeatable.")
        var approval: [String] = []
        @Flag(help: "Print the TPM commands and the time of the unseal and of the key install (BENCHMARKS.md).")
        var measure = false
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let vault = openVault(path)
                let approvals = try readApprovals(approval)
                guard measure else {
                    try await activationSkipped { try await vault.unlock(tpm: tpm, approvals: approvals) }
                    print("vault \(path): unlocked")
                    return
                }
                let clock = ContinuousClock()
                let commandsBefore = await tpm.commandsSent
                let t0 = clock.now
                let metadata = try vault.read()
                let key = try await vault.unsealKey(metadata, tpm: tpm, approvals: approvals)
                let t1 = clock.now
                let commands = await tpm.commandsSent - commandsBefore
                func ms(_ d: Duration) -> String {
                    String(format: "%.2f", Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1e3)
                }
                print("unseal: \(commands) TPM commands, \(ms(t1 - t0)) ms")
                try vault.checkKey(key, metadata)
                try await activationSkipped {
                    defer { print("key check and install: \(ms(clock.now - t1)) ms") }
                    try vault.install(key, metadata)
                }
                print("vault \(path): unlocked")
            }
        }
    }

    struct Lock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the key: the files become unreadable.")
        @Argument(help: "The vault directory.") var path: String

        func run() async throws {
            try await reportingErrors {
                if let luks = openVault(path) as? LUKS2Vault {
                    try luks.lock()
                    print("vault \(path): locked (no mapping)")
                    return
                }
                let done = try FSCryptVault(path: path).lock()
                print(done ? "vault \(path): locked" : "vault \(path): locking (files still open keep it until closed)")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Backend, state, sealing policy, and the sealed PCRs that differ now.")
        @Argument(help: "The vault directory.") var path: String
        @Option(help: "The event log now, to name the events that changed (default: the kernel's, when readable).")
        var eventlog: String?
        @OptionGroup var tpmOptions: TPMOptions
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let s = try await openVault(path).status(tpm: tpm, bootLog: try readBootLog(eventlog).log)
                if json {
                    try printAPIJSON(s)
                } else {
                    print(
                        "vault \(path): \(s.backend), \(s.state), sealed to \(s.sealedTo) (policy \(s.policyDigest.prefix(16))…)"
                    )
                    print(s.escrow.map { "escrowed at the controller as \($0.name) v\($0.version)" } ?? "not escrowed")
                    if s.changes.isEmpty { print("PCRs as at seal time: it unlocks offline") }
                    for c in s.changes {
                        print(
                            "PCR \(c.pcr) differs from seal time: sealed \(c.sealed.prefix(16))…, now \(c.now.prefix(16))…"
                        )
                        for e in c.events { print("  \(e)") }
                    }
                    if !s.changes.isEmpty {
                        print(
                            "it will not unlock offline: vigil vault recover PATH --controller … after a passing attestation"
                        )
                    }
                }
            }
        }
    }

    struct Reseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unseal with the current sealing and seal the key again to the PCRs' values now.")
        @Argument(help: "The vault directory.") var path: String
        @Option(help: "SHA-256 PCRs to seal to (default: those sealed to now).") var pcrs: String?
        @Option(help: "The event log now, recorded for status (default: the kernel's, when readable).") var eventlog:
            String?
        @Option(help: "A signed approval, for a vault sealed to approvals; repeatable.") var approval: [String] = []
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let list = try pcrs.map(parsePCRList)
                let m = try await openVault(path).reseal(
                    tpm: tpm, pcrs: list, bootLog: try readBootLog(eventlog).log, approvals: try readApprovals(approval)
                )
                print(
                    "vault \(path): resealed to sha256:\(m.sealing.pcrs.map(String.init).joined(separator: ",")) (policy \(m.sealing.policyDigest.prefix(16))…)"
                )
            }
        }
    }

    struct Escrow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Escrow the vault's key at the controller (the key comes from the current sealing).")
        @Argument(help: "The vault directory.") var path: String
        @OptionGroup var controllerOptions: ControllerOptions
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let m = try await controllerOptions.withConnection { connection in
                    try await openVault(path).depositEscrow(
                        tpm: tpm,
                        try await VaultRecovery.depositor(agent: DeviceAgent(tpm: tpm, connection: connection)))
                }
                print(
                    "vault \(path): escrowed at the controller as \(m.escrow?.name ?? "?") v\(m.escrow?.version ?? 0)")
            }
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Attest; on a pass, get the escrow back from the controller, open it with the TPM, reseal to the PCRs now and unlock."
        )
        @Argument(help: "The vault directory.") var path: String
        @Option(help: "The event log to attest with (default: the kernel's, when readable).") var eventlog: String?
        @OptionGroup var controllerOptions: ControllerOptions
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let bootLog = try readBootLog(eventlog)
                let outcome = try await activationSkipped {
                    try await controllerOptions.withConnection { connection in
                        try await VaultRecovery.recover(
                            openVault(path), agent: DeviceAgent(tpm: tpm, connection: connection),
                            eventLog: bootLog.bytes)
                    }
                }
                print("attestation passed (\(outcome.attestation.deviceID)); escrow opened by this TPM")
                print(
                    "vault \(path): resealed to sha256:\(outcome.metadata.sealing.pcrs.map(String.init).joined(separator: ",")) as they are now; unlocked"
                )
            }
        }
    }

    struct ApprovePCRs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approve-pcrs",
            abstract:
                "Sign an approval of PCR values for a vault sealed to approvals (the security team's side; no TPM needed)."
        )
        @Option(help: "The authority's P-256 private key (PEM).") var key: String
        @Option(help: "The vault's descriptor: the JSON of vigil vault status --json on the device.") var vault: String
        @Option(
            help:
                "The approved SHA-256 values: JSON {\"sha256\": {\"0\": HEX, …}} (vigil vault predict --json, or vigil eventlog replay --json)."
        )
        var pcrValues: String
        @Option(
            help:
                "The PCRs the approval pins (the team's choice; default: those the device's descriptor names, which must include 0, 4, 7)."
        )
        var pcrs: String?
        @Option(help: "Validity: 90s, 30m, 12h, 30d.") var expires = "30d"
        @Option(help: "A note kept in the approval (e.g. the release it is for).") var note: String?
        @Option(help: "Where to write the approval.") var out: String

        func run() async throws {
            try await reportingErrors {
                let pem = String(decoding: try readInput(key, limit: 64 * 1024), as: UTF8.self)
                let authority = try P256.Signing.PrivateKey(pemRepresentation: pem)
                let decoder = JSONDecoder()
                decoder.keyDecodingStrategy = .convertFromSnakeCase
                struct StatusDocument: Decodable { var approval: ApprovalDescriptor? }
                let status = try decoder.decode(StatusDocument.self, from: Data(try readInput(vault, limit: 1 << 20)))
                guard var descriptor = status.approval else {
                    throw ValidationError("--vault: no \"approval\" in it: the vault is sealed to PCRs, not approvals")
                }
                descriptor.vaultID = descriptor.vaultID.lowercased()
                if let pcrs { descriptor.pcrs = try parsePCRList(pcrs) }
                let values = try readPCRValues(pcrValues)
                guard let seconds = durationSeconds(expires) else {
                    throw ValidationError("--expires: a number with s, m, h or d (30d)")
                }
                let approval = try PCRApproval.sign(
                    authority: authority, descriptor: descriptor, values: values,
                    expiresAt: Date().addingTimeInterval(TimeInterval(seconds)), note: note)
                try AtomicFile.write(try approval.json(), to: URL(fileURLWithPath: out), mode: 0o644)
                print(
                    "approval for vault \(descriptor.vaultID) (epoch \(descriptor.epoch), PCRs \(descriptor.pcrs.map(String.init).joined(separator: ","))) until \(ISO8601DateFormatter().string(from: approval.expiresAt)): \(out)"
                )
            }
        }
    }

    struct RevokeApprovals: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-approvals",
            abstract: "Raise the TPM's approval counter: every approval signed for an earlier epoch stops opening.")
        @Argument(help: "The vault directory.") var path: String
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let epoch = try await openVault(path).revokeApprovals(tpm: tpm)
                print("approval counter now at epoch \(epoch): approvals for earlier epochs are revoked")
            }
        }
    }
}

extension VaultCommand {
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "LUKS2: replace the TPM key (a new keyslot, the token switched, the escrow updated, the old keyslot destroyed)."
        )
        @Argument(help: "The LUKS2 volume.") var path: String
        @Option(help: "The controller, to update the escrow (required for an escrowed vault).") var controller: String?
        @Option(help: "The controller's CA certificate (with --controller).") var ca: String?
        @Option(help: "A signed approval, for a vault sealed to approvals; repeatable.") var approval: [String] = []
        @OptionGroup var tpmOptions: TPMOptions

        func run() async throws {
            try await reportingErrors {
                guard LUKS2Vault.isLUKS2(path) else {
                    throw VaultError(
                        reason:
                            "vault: \(path) is not a LUKS2 volume; an fscrypt directory's key cannot be replaced in place (the kernel binds every file to it): create a new vault and copy"
                    )
                }
                let tpm = try await tpmOptions.open()
                let approvals = try readApprovals(approval)
                let vault = LUKS2Vault(path: path)
                let m: VaultMetadata
                if let connection = try escrowConnection(controller: controller, ca: ca) {
                    m = try await connection.withConnection { connection in
                        try await vault.rotate(
                            tpm: tpm, approvals: approvals,
                            escrow: try await VaultRecovery.depositor(
                                agent: DeviceAgent(tpm: tpm, connection: connection)))
                    }
                } else {
                    m = try await vault.rotate(tpm: tpm, approvals: approvals, escrow: nil)
                }
                print(
                    "vault \(path): new TPM key in \(m.keyIdentifier)\(m.escrow.map { ", escrowed as \($0.name) v\($0.version)" } ?? "")"
                )
            }
        }
    }

    struct Predict: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "The PCRs an updated boot chain will produce: the event log replayed with EFI applications replaced (Authenticode digests of the new images)."
        )
        @Option(help: "The event log of the current boot.") var eventlog: String
        @Option(
            name: .customLong("replace-app"),
            help: "OLD=NEW.efi: OLD is the logged SHA-256 digest (hex) or the old image; repeatable.")
        var replaceApp: [String] = []
        @Flag(help: "JSON: {\"pcrs\": {\"sha256\": {\"0\": HEX, …}}, \"replaced\": […]} (what approve-pcrs reads).")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let log = try readInput(eventlog, limit: UnverifiedEventLog.maxLogSize)
                let replacements = try replaceApp.map { spec -> BootChainPrediction.Replacement in
                    guard let eq = spec.firstIndex(of: "=") else {
                        throw ValidationError("--replace-app: OLD=NEW.efi (OLD: a SHA-256 digest or the old image)")
                    }
                    let old = String(spec[..<eq])
                    let newImage = try readInput(
                        String(spec[spec.index(after: eq)...]), limit: AuthenticodeDigest.maxImageSize)
                    let oldDigest: [UInt8]
                    if let hex = Hex.decode(old), hex.count == 32 {
                        oldDigest = hex
                    } else {
                        oldDigest = try AuthenticodeDigest(
                            image: try readInput(old, limit: AuthenticodeDigest.maxImageSize)
                        ).digest
                    }
                    return BootChainPrediction.Replacement(oldSHA256: oldDigest, newImage: newImage)
                }
                let prediction = try BootChainPrediction(log: log, replacements: replacements)
                if json {
                    struct Output: Encodable {
                        var pcrs: [String: [String: String]]
                        var replaced: [Replaced]
                        struct Replaced: Encodable {
                            var event: Int
                            var pcr: Int
                            var old: String
                            var new: String
                        }
                    }
                    try printJSON(
                        Output(
                            pcrs: prediction.values.jsonObject,
                            replaced: prediction.replaced.map {
                                .init(event: $0.event, pcr: $0.pcr, old: Hex.encode($0.old), new: Hex.encode($0.new))
                            }))
                } else {
                    for r in prediction.replaced {
                        print(
                            "event \(r.event) (PCR \(r.pcr)): \(Hex.encode(r.old).prefix(16))… → \(Hex.encode(r.new).prefix(16))…"
                        )
                    }
                    for pcr in 0..<24 {
                        if let v = prediction.values[.sha256, pcr] { print("sha256 PCR \(pcr): \(Hex.encode(v))") }
                    }
                }
            }
        }
    }
}

/// Runs `body`; a LUKS2 unlock that got the volume key but could not map it (no device-mapper in this kernel)
/// exits 3 with the reason, so scripts can tell it from a refusal (1).
func activationSkipped<R>(_ body: () async throws -> R) async throws -> R {
    do { return try await body() } catch let e as VaultError where e.errno == ENODEV {
        FileHandle.standardError.write(Data("vigil: \(e.reason)\n".utf8))
        throw ExitCode(3)
    }
}

/// The vault at `path` (``SealedVaults/open(_:)``).
func openVault(_ path: String) -> any SealedVault { SealedVaults.open(path) }

/// `--pcrs`: SHA-256 PCRs as a list like 0,1,2,7 or 0-4,6-14.
func parsePCRList(_ spec: String) throws -> [Int] {
    guard let parsed = TPMLPCRSelection(parsingSpec: "sha256:" + spec)?.selections.first?.pcrs else {
        throw ValidationError("--pcrs: a list like 0,1,2,7 or 0-4,6-14")
    }
    return parsed
}

/// A size as people write it: 512, 64K, 64M, 1G.
func byteCount(_ text: String) -> Int? {
    guard let unit = text.last?.uppercased(), let n = Int(text.dropLast()), n > 0, n < 1 << 40 else { return Int(text) }
    switch unit {
    case "K": return n << 10
    case "M": return n << 20
    case "G": return n << 30
    default: return nil
    }
}

/// Signed approvals read from files (untrusted: size-capped and parsed with errors naming the file).
func readApprovals(_ paths: [String]) throws -> [PCRApproval] {
    try paths.map { path in
        do { return try PCRApproval(json: try readInput(path, limit: PCRApproval.maximumSize)) } catch let e
            as VaultError
        {
            throw VaultError(reason: "\(path): \(e.reason)")
        }
    }
}

/// PCR values from JSON: {"sha256": {"0": HEX}} or {"pcrs": {"sha256": {…}}}.
func readPCRValues(_ path: String) throws -> PCRValues {
    let bytes = try readInput(path, limit: 1 << 20)
    guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw ValidationError("\(path): not a JSON object")
    }
    let banks = (object["pcrs"] as? [String: Any]) ?? object
    var table: [String: [String: String]] = [:]
    for (bank, value) in banks {
        guard let map = value as? [String: String] else { continue }
        table[bank] = map
    }
    guard !table.isEmpty else { throw ValidationError("\(path): no {\"sha256\": {PCR: HEX}} table") }
    return try PCRValues(jsonObject: table)
}

/// The event log at `path`, or the kernel's when none is given and it is readable.
func readBootLog(_ path: String?) throws -> (bytes: [UInt8]?, log: UnverifiedEventLog?) {
    let chosen =
        path
        ?? (FileManager.default.isReadableFile(atPath: EvidenceCollector.kernelEventLog)
            ? EvidenceCollector.kernelEventLog : nil)
    guard let chosen else { return (nil, nil) }
    let bytes = try readInput(chosen, limit: UnverifiedEventLog.maxLogSize)
    return (bytes, try UnverifiedEventLog(bytes: bytes))
}

/// The controller to escrow at, when `--controller` is given (then `--ca` is required).
func escrowConnection(controller: String?, ca: String?) throws -> ControllerOptions? {
    guard let controller else {
        if ca != nil { throw ValidationError("--ca is for --controller") }
        return nil
    }
    guard let ca else { throw ValidationError("--controller needs --ca (the controller's CA certificate)") }
    return try ControllerOptions.parse(["--controller", controller, "--ca", ca])
}
