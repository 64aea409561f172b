public import Attest
public import Crypto
public import Foundation

/// A security team's signed approval of PCR values for one vault (`vigil vault approve-pcrs`): with it, a vault
/// sealed with PolicyAuthorize opens offline whenever the device's PCRs equal the approved ones, with no reseal
/// and no controller, e.g. after an update whose PCRs the team predicted (`vigil vault predict`) and approved.
///
/// What the TPM enforces (TPM 2.0 Part 3 §23.16 TPM2_PolicyAuthorize): ``approvedPolicy`` is
/// PolicyPCR(the approved values) ∧ PolicyNV(approval counter ≤ ``epoch``), signed by the authority key the vault
/// was sealed to (``policySignature``, checked by TPM2_VerifySignature). Raising the counter
/// (`vigil vault revoke-approvals`) makes every approval for an earlier epoch fail in the TPM.
///
/// What Vigil enforces before using it: ``documentSignature`` (same key) over the vault, the epoch, the approved
/// policy and ``expiresAt``; an expired approval is refused. A TPM has no wall clock, so expiry is a property of
/// Vigil's unlock, not of the TPM: revocation through the counter is what binds an attacker running their own code.
public struct PCRApproval: Codable, Sendable, Hashable {
    /// The approval format.
    public static let currentFormat = 1
    /// The largest approval document accepted.
    public static let maximumSize = 64 * 1024
    /// The PolicyAuthorize policyRef of a vault: a context and the vault's id, so the TPM itself refuses an
    /// approval signed for another vault (on this device or any other) and approvals for other purposes.
    public static func policyRef(vaultID: String) -> [UInt8] { Array("vigil-vault-approval-v1\u{0}\(vaultID)".utf8) }

    /// ``currentFormat``.
    public var format: Int
    /// The vault it is for.
    public var vaultID: String
    /// The approved SHA-256 PCR values (hex, by PCR index).
    public var pcrs: [String: String]
    /// The approval counter value it is valid up to.
    public var epoch: UInt64
    /// The approval counter's NV Name (hex).
    public var counterName: String
    /// When Vigil stops accepting it.
    public var expiresAt: Date
    /// The authority key's Name (hex).
    public var authorityName: String
    /// The approved policy digest (hex).
    public var approvedPolicy: String
    /// ECDSA P-256 r ‖ s over SHA-256(approvedPolicy ‖ policyRef) (hex): what the TPM verifies.
    public var policySignature: String
    /// ECDSA P-256 r ‖ s over ``signedText()`` (hex): binds the expiry and the vault.
    public var documentSignature: String
    /// A note for people ("release 2026.12").
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case format, vaultID = "vaultId", pcrs, epoch, counterName, expiresAt, authorityName, approvedPolicy,
            policySignature, documentSignature, note
    }

    /// The PCR selection and values of the approval, in PCR order.
    public func values() throws(VaultError) -> (pcrs: [Int], values: PCRValues) {
        var list: [Int] = []
        var values = PCRValues()
        for (key, hex) in pcrs {
            guard let pcr = Int(key), (0...23).contains(pcr), let v = Hex.decode(hex), v.count == 32 else {
                throw VaultError(
                    reason: "vault: approval PCR \(key.prefix(8)) = \(hex.prefix(80)) is not a SHA-256 PCR value")
            }
            list.append(pcr)
            values[.sha256, pcr] = v
        }
        guard !list.isEmpty else { throw VaultError(reason: "vault: the approval approves no PCRs") }
        return (list.sorted(), values)
    }

    /// The policy the TPM must reach before PolicyAuthorize: PolicyPCR(values) then PolicyNV(counter ≤ epoch).
    public static func approvedPolicy(pcrs: [Int], values: PCRValues, epoch: UInt64, counterName: [UInt8])
        throws(VaultError) -> [UInt8]
    {
        do {
            var digest = try TPMPolicyDigest()
            try digest.policyPCR(
                selection: TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: pcrs)]), values: values)
            try digest.policyNV(
                operandB: ApprovalCounter.operand(epoch: epoch), operation: .unsignedLessOrEqual,
                nvIndexName: counterName)
            return digest.digest
        } catch { throw VaultError(reason: "vault: computing the approved policy failed: \(error.reason)") }
    }

    /// The text ``documentSignature`` covers.
    public func signedText() -> [UInt8] {
        Array(
            [
                "vigil-pcr-approval", String(format), vaultID, String(epoch), counterName,
                String(Int64(expiresAt.timeIntervalSince1970)), authorityName, approvedPolicy, note ?? "",
            ].joined(separator: "\u{0}").utf8)
    }

    /// Signs an approval of `values` for the vault `descriptor` describes, valid until `expiresAt`.
    public static func sign(
        authority: P256.Signing.PrivateKey, descriptor: ApprovalDescriptor, values: PCRValues, expiresAt: Date,
        note: String? = nil
    ) throws(VaultError) -> PCRApproval {
        let authorityName = try AuthorizedSealing.name(of: authority.publicKey)
        guard Hex.encode(authorityName) == descriptor.authorityName else {
            throw VaultError(
                reason:
                    "vault: this key (\(Hex.encode(authorityName).prefix(20))…) is not the vault's authority (\(descriptor.authorityName.prefix(20))…)"
            )
        }
        guard let counterName = Hex.decode(descriptor.counterName), counterName.count == 34 else {
            throw VaultError(reason: "vault: the descriptor's counter name is not a SHA-256 NV Name")
        }
        // The descriptor comes from the device: an absurd epoch would make the approval impossible to revoke.
        guard descriptor.epoch < 1 << 48 else {
            throw VaultError(
                reason: "vault: the descriptor's epoch \(descriptor.epoch) is not a plausible counter value")
        }
        try PCRSealedKey.checkPCRSet(descriptor.pcrs)
        var pcrs: [String: String] = [:]
        for pcr in descriptor.pcrs {
            guard let v = values[.sha256, pcr], v.count == 32 else {
                throw VaultError(reason: "vault: no SHA-256 value for PCR \(pcr) (the vault pins \(descriptor.pcrs))")
            }
            pcrs[String(pcr)] = Hex.encode(v)
        }
        let policy = try approvedPolicy(
            pcrs: descriptor.pcrs, values: values, epoch: descriptor.epoch, counterName: counterName)
        var approval = PCRApproval(
            format: currentFormat, vaultID: descriptor.vaultID, pcrs: pcrs, epoch: descriptor.epoch,
            counterName: descriptor.counterName,
            expiresAt: Date(timeIntervalSince1970: expiresAt.timeIntervalSince1970.rounded(.down)),
            authorityName: descriptor.authorityName, approvedPolicy: Hex.encode(policy), policySignature: "",
            documentSignature: "", note: note)
        do {
            approval.policySignature = Hex.encode(
                try authority.signature(for: policy + policyRef(vaultID: descriptor.vaultID)).rawRepresentation)
            approval.documentSignature = Hex.encode(
                try authority.signature(for: approval.signedText()).rawRepresentation)
        } catch { throw VaultError(reason: "vault: signing the approval failed: \(error)") }
        return approval
    }

    /// Checks everything Vigil can before the TPM does: format, vault, authority, document signature, expiry,
    /// and that ``approvedPolicy`` is what the stated PCR values, epoch and counter give.
    public func check(vaultID expectedVault: String, authority: AuthorizedSealing, now: Date) throws(VaultError) {
        guard format == Self.currentFormat else {
            throw VaultError(reason: "vault: approval format \(format) is not 1")
        }
        guard vaultID == expectedVault else {
            throw VaultError(reason: "vault: the approval is for vault \(vaultID.prefix(40)), not \(expectedVault)")
        }
        guard authorityName == authority.authorityName else {
            throw VaultError(
                reason: "vault: the approval is signed by another authority (\(authorityName.prefix(20))…)")
        }
        let key = try authority.publicKey()
        guard let docSig = Hex.decode(documentSignature),
            let sig = try? P256.Signing.ECDSASignature(rawRepresentation: docSig),
            key.isValidSignature(sig, for: signedText())
        else { throw VaultError(reason: "vault: the approval's document signature does not verify (edited?)") }
        guard expiresAt > now else {
            throw VaultError(
                reason:
                    "vault: the approval expired at \(ISO8601DateFormatter().string(from: expiresAt))\(note.map { " (\($0.prefix(80)))" } ?? "")"
            )
        }
        guard let counterBytes = Hex.decode(counterName), counterName == authority.counterName else {
            throw VaultError(reason: "vault: the approval names another approval counter")
        }
        let (list, values) = try values()
        guard
            Hex.encode(try Self.approvedPolicy(pcrs: list, values: values, epoch: epoch, counterName: counterBytes))
                == approvedPolicy
        else {
            throw VaultError(reason: "vault: the approval's policy is not what its PCR values and epoch give (edited?)")
        }
    }

    /// Parses an approval document (untrusted), size-capped.
    public init(json bytes: some Collection<UInt8>) throws(VaultError) {
        guard bytes.count <= Self.maximumSize else {
            throw VaultError(reason: "vault: approval of \(bytes.count) bytes exceeds \(Self.maximumSize)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { self = try decoder.decode(PCRApproval.self, from: Data(bytes)) } catch {
            throw VaultError(reason: "vault: the approval is not valid: \(error)")
        }
    }

    /// The approval as JSON.
    public func json() throws(VaultError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { return Array(try encoder.encode(self)) } catch { throw VaultError(reason: "vault: \(error)") }
    }

    init(
        format: Int, vaultID: String, pcrs: [String: String], epoch: UInt64, counterName: String, expiresAt: Date,
        authorityName: String, approvedPolicy: String, policySignature: String, documentSignature: String,
        note: String?
    ) {
        self.format = format
        self.vaultID = vaultID
        self.pcrs = pcrs
        self.epoch = epoch
        self.counterName = counterName
        self.expiresAt = expiresAt
        self.authorityName = authorityName
        self.approvedPolicy = approvedPolicy
        self.policySignature = policySignature
        self.documentSignature = documentSignature
        self.note = note
    }
}

/// What a security team needs to sign approvals for one vault, as `vigil vault status --json` prints it under
/// `approval`: nothing secret.
public struct ApprovalDescriptor: Codable, Sendable, Hashable {
    /// The vault.
    public var vaultID: String
    /// The PCRs an approval pins.
    public var pcrs: [Int]
    /// The approval counter's current value: the epoch new approvals are for.
    public var epoch: UInt64
    /// The approval counter's Name (hex).
    public var counterName: String
    /// The authority key's Name (hex).
    public var authorityName: String

    enum CodingKeys: String, CodingKey {
        case vaultID = "vaultId", pcrs, epoch, counterName, authorityName
    }
}

/// A sealing opened by signed approvals (PolicyAuthorize): the authority's public key and the approval counter.
public struct AuthorizedSealing: Codable, Sendable, Hashable {
    /// The authority's TPMT_PUBLIC (base64): P-256, ECDSA-SHA256, sign only.
    public var authorityPublic: String
    /// Its Name (hex).
    public var authorityName: String
    /// The approval counter's Name (hex) at seal time.
    public var counterName: String
    /// The vault's id, in the policyRef.
    public var vaultID: String

    /// The authority's TPMT_PUBLIC for a swift-crypto key.
    public static func tpmPublic(of key: P256.Signing.PublicKey) -> TPMTPublic {
        let raw = Array(key.rawRepresentation)
        return TPMTPublic(
            nameAlg: .sha256, objectAttributes: [.sign, .userWithAuth],
            parameters: .ecc(
                .init(
                    symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256), curve: .nistP256,
                    x: Array(raw[0..<32]), y: Array(raw[32..<64]))))
    }

    /// The authority key's TPM Name.
    public static func name(of key: P256.Signing.PublicKey) throws(VaultError) -> [UInt8] {
        do { return try tpmPublic(of: key).name().bytes } catch {
            throw VaultError(reason: "vault: the authority key's name: \(error.reason)")
        }
    }

    /// A sealing for `key` and the counter state.
    public init(authority key: P256.Signing.PublicKey, counter: ApprovalCounter.State, vaultID: String)
        throws(VaultError)
    {
        authorityPublic = Data(Self.tpmPublic(of: key).marshal()).base64EncodedString()
        authorityName = Hex.encode(try Self.name(of: key))
        counterName = counter.name
        self.vaultID = vaultID
    }

    /// The authority's TPMT_PUBLIC, checked against the recorded Name.
    public func tpmPublic() throws(VaultError) -> TPMTPublic {
        guard let bytes = Data(base64Encoded: authorityPublic),
            let area = try? TPMTPublic(tpmtPublicBytes: Array(bytes)),
            (try? Hex.encode(area.name().bytes)) == authorityName
        else { throw VaultError(reason: "vault: the recorded authority key does not match its Name") }
        return area
    }

    /// The authority's key for checking document signatures.
    public func publicKey() throws(VaultError) -> P256.Signing.PublicKey {
        guard case .ecc(let ecc) = try tpmPublic().parameters, ecc.curve == .nistP256, ecc.x.count <= 32,
            ecc.y.count <= 32,
            let key = try? P256.Signing.PublicKey(
                rawRepresentation: [UInt8](repeating: 0, count: 32 - ecc.x.count) + ecc.x
                    + [UInt8](repeating: 0, count: 32 - ecc.y.count) + ecc.y)
        else { throw VaultError(reason: "vault: the recorded authority key is not a P-256 key") }
        return key
    }

    /// The object's authPolicy: PolicyAuthorize(authority, ``PCRApproval/policyRef(vaultID:)``).
    public func objectPolicy() throws(VaultError) -> [UInt8] {
        do {
            var digest = try TPMPolicyDigest()
            try digest.policyAuthorize(
                keySign: TPMName(bytes: Hex.decode(authorityName) ?? []),
                policyRef: PCRApproval.policyRef(vaultID: vaultID))
            return digest.digest
        } catch { throw VaultError(reason: "vault: computing the authorize policy failed: \(error.reason)") }
    }
}
