import Attest
public import AttestTPM
public import Foundation

/// A vault key sealed in the TPM to PCR values (TPM 2.0 Part 1 §19.7, Part 3 §23.7 TPM2_PolicyPCR): a
/// keyed-hash object under the SRK, fixedTPM and fixedParent, without userWithAuth (only its policy opens it),
/// whose authPolicy is PolicyPCR over the configured SHA-256 PCRs. Unsealing runs in a policy session salted by
/// the SRK with parameter encryption, so the key crosses the TPM interface encrypted.
///
/// What is stored (crash-safely, 0600, never the key): the sealed blob, the PCR selection, the policy digest and
/// the PCR values at seal time, so a failed unseal says which PCRs changed.
public struct PCRSealedKey: Codable, Sendable, Hashable {
    /// The sealing format.
    public static let currentFormat = 1
    /// The default PCRs: SHA-256 0–4 and 6–14 (EVE's set; 5, the GPT, changes with partitioning tools).
    public static let defaultPCRs = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]

    /// ``currentFormat``.
    public var format: Int
    /// The bank (always sha256 today).
    public var bank: String
    /// The PCRs the key is sealed to.
    public var pcrs: [Int]
    /// The policy digest (hex), equal to the object's authPolicy.
    public var policyDigest: String
    /// The PCR values at seal time (hex, by PCR).
    public var valuesAtSeal: [String: String]
    /// TPM2B_PRIVATE of the sealed object (base64).
    public var privateArea: String
    /// TPMT_PUBLIC of the sealed object (base64).
    public var publicArea: String
    /// When set, the object's policy is PolicyAuthorize by this authority (signed approvals open it) instead of
    /// PolicyPCR over ``pcrs``; ``pcrs`` and ``valuesAtSeal`` then record what an approval pins and the values
    /// at seal time.
    public var authorization: AuthorizedSealing?

    /// The PCRs every sealing must include: the firmware (0), the boot loader and kernel (4), Secure Boot (7).
    public static let requiredPCRs: Set<Int> = [0, 4, 7]

    /// Refuses a PCR set that proves little: one without PCRs 0, 4 and 7, or with PCRs 16–23, which software can
    /// reset (16: debug; 17–22: dynamic launch, reset at locality 4; 23: application).
    public static func checkPCRSet(_ pcrs: [Int]) throws(VaultError) {
        guard !pcrs.isEmpty, pcrs.allSatisfy({ (0...15).contains($0) }), Set(pcrs).count == pcrs.count else {
            throw VaultError(reason: "vault: PCRs must be distinct, between 0 and 15 (16–23 can be reset by software)")
        }
        let missing = requiredPCRs.subtracting(pcrs).sorted()
        guard missing.isEmpty else {
            throw VaultError(
                reason:
                    "vault: the PCRs must include 0, 4 and 7 (firmware, boot chain, Secure Boot); missing \(missing)")
        }
    }

    /// Generates a vault key of `size` bytes: the TPM's RNG (TPM2_GetRandom) XOR the OS RNG, so neither alone
    /// decides it.
    public static func generateKey(tpm: TPM, size: Int) async throws(VaultError) -> SecretBytes {
        var fromTPM: [UInt8]
        do { fromTPM = try await tpm.getRandom(size) } catch {
            throw VaultError(reason: "vault: TPM2_GetRandom failed: \(error.reason)", tpm: error)
        }
        defer { for i in fromTPM.indices { fromTPM[i] = 0 } }
        guard fromTPM.count == size else {
            throw VaultError(reason: "vault: TPM2_GetRandom gave \(fromTPM.count) bytes, not \(size)")
        }
        var rng = SystemRandomNumberGenerator()
        // Mixed straight into locked memory: the key never sits in an array.
        return SecretBytes(count: size) { key in
            for i in 0..<size { key[i] = fromTPM[i] ^ UInt8.random(in: .min ... .max, using: &rng) }
        }
    }

    /// Seals `key` to the current values of `pcrs` (SHA-256). Refuses when PCR 0 or PCR 4 is all zeros: firmware
    /// that measured nothing would make the seal worthless.
    public static func seal(
        _ key: SecretBytes, tpm: TPM, pcrs: [Int] = defaultPCRs, authorization: AuthorizedSealing? = nil
    ) async throws(VaultError) -> PCRSealedKey {
        try Self.checkPCRSet(pcrs)
        let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: pcrs.sorted())])
        let check = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: [0, 4])])
        do {
            let (measured, _) = try await tpm.pcrRead(check)
            for pcr in [0, 4] where measured[.sha256, pcr]?.allSatisfy({ $0 == 0 }) ?? true {
                throw VaultError(
                    reason:
                        "vault: refusing to seal: SHA-256 PCR \(pcr) is all zeros (the firmware measured nothing; a seal to it proves nothing)"
                )
            }
            let (values, _) = try await tpm.pcrRead(selection)
            let policy: [UInt8]
            if let authorization {
                policy = try authorization.objectPolicy()
            } else {
                policy = try await tpm.withPolicySession(trial: true) { tpm, session throws(TPMError) in
                    try tpm.policyPCR(session, selection: selection)
                    return try tpm.policyGetDigest(session)
                }
            }
            let template = TPMTPublic(
                nameAlg: .sha256, objectAttributes: [.fixedTPM, .fixedParent], authPolicy: policy,
                parameters: .keyedHash(scheme: .null, unique: []))
            // Salted by the SRK with parameter encryption: the key crosses the bus encrypted here too.
            let blob = try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                try tpm.withHMACSession(salt: srk) { tpm, session throws(TPMError) in
                    try tpm.create(parent: srk, template: template, sealedData: key, session: session)
                }
            }
            var atSeal: [String: String] = [:]
            for pcr in pcrs { atSeal[String(pcr)] = Hex.encode(values[.sha256, pcr] ?? []) }
            return PCRSealedKey(
                format: currentFormat, bank: "sha256", pcrs: pcrs.sorted(), policyDigest: Hex.encode(policy),
                valuesAtSeal: atSeal, privateArea: Data(blob.privateArea).base64EncodedString(),
                publicArea: Data(blob.publicArea).base64EncodedString(), authorization: authorization)
        } catch let e as VaultError {
            throw e
        } catch let e as TPMError {
            throw VaultError(reason: "vault: sealing failed: \(e.reason)", tpm: e)
        } catch {
            throw VaultError(reason: "vault: sealing failed: \(error)")
        }
    }

    /// Unseals the key. When the TPM refuses the policy, the error names each PCR that differs from seal time.
    /// An authorized sealing needs a signed approval for the PCRs as they are: see
    /// ``unseal(tpm:approvals:vaultID:now:)``.
    public func unseal(tpm: TPM) async throws(VaultError) -> SecretBytes {
        guard authorization == nil else {
            throw VaultError(reason: "vault: this vault opens with a signed approval of its PCRs (--approval FILE)")
        }
        let blob = try blob()
        let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: pcrs)])
        do {
            return try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                try tpm.withLoaded(parent: srk, blob) { tpm, item throws(TPMError) in
                    try tpm.withPolicySession(salt: srk) { tpm, session throws(TPMError) in
                        try tpm.policyPCR(session, selection: selection)
                        return try tpm.unseal(item, session: session)
                    }
                }
            }
        } catch {
            if error.isTPM(.policyFail) {
                let changed = (try? await changedPCRs(tpm: tpm)) ?? []
                throw VaultError(
                    reason: changed.isEmpty
                        ? "vault: the TPM refused the PCR policy, but no sealed PCR differs from seal time (the sealing was made on another TPM state?)"
                        : "vault: the PCRs differ from seal time: "
                            + changed.map {
                                "PCR \($0.pcr) (sealed \($0.sealed.prefix(16))…, now \($0.now.prefix(16))…)"
                            }
                            .joined(separator: ", "),
                    tpm: error)
            }
            throw VaultError(reason: "vault: unsealing failed: \(error.reason)", tpm: error)
        }
    }

    func blob() throws(VaultError) -> TPMKeyBlob {
        guard format == Self.currentFormat, bank == "sha256",
            let privateBytes = Data(base64Encoded: privateArea), let publicBytes = Data(base64Encoded: publicArea)
        else { throw VaultError(reason: "vault: the sealed key's metadata is not a format-1 SHA-256 sealing") }
        return TPMKeyBlob(privateArea: Array(privateBytes), publicArea: Array(publicBytes))
    }

    /// Unseals an authorized sealing with the first of `approvals` that Vigil accepts (signed by the vault's
    /// authority, for this vault, not expired, its policy what its values give) and whose PCR values are the PCRs'
    /// values now. The TPM then checks the signature (TPM2_VerifySignature), the PCRs (PolicyPCR) and the epoch
    /// against the approval counter (PolicyNV) before PolicyAuthorize lets TPM2_Unseal through. When none opens,
    /// the error says why for each approval.
    public func unseal(tpm: TPM, approvals: [PCRApproval], vaultID: String, now: Date = Date()) async throws(VaultError)
        -> SecretBytes
    {
        guard let authorization else { return try await unseal(tpm: tpm) }
        guard !approvals.isEmpty else {
            throw VaultError(reason: "vault: this vault opens with a signed approval of its PCRs (--approval FILE)")
        }
        let blob = try blob()
        let authority = try authorization.tpmPublic()
        var reasons: [String] = []
        for (i, approval) in approvals.enumerated() {
            do throws(VaultError) {
                try approval.check(vaultID: vaultID, authority: authorization, now: now)
                let (pcrList, approved) = try approval.values()
                let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: pcrList)])
                let current: PCRValues
                do { current = try await tpm.pcrRead(selection).values } catch {
                    throw VaultError(reason: "reading PCRs failed: \(error.reason)", tpm: error)
                }
                let differing = pcrList.filter { current[.sha256, $0] != approved[.sha256, $0] }
                guard differing.isEmpty else {
                    throw VaultError(
                        reason:
                            "the PCRs are not the approved values: PCR \(differing.map(String.init).joined(separator: ", "))"
                    )
                }
                guard let policy = Hex.decode(approval.approvedPolicy), let rs = Hex.decode(approval.policySignature),
                    rs.count == 64
                else { throw VaultError(reason: "its policy or signature is not hex") }
                let aHash: [UInt8]
                do {
                    aHash = try TPMPolicyDigest.approvalDigest(
                        approvedPolicy: policy, policyRef: PCRApproval.policyRef(vaultID: authorization.vaultID))
                } catch { throw VaultError(reason: "\(error.reason)") }
                let signature = TPMTSignature(
                    algorithm: .ecdsa, hashAlg: .sha256, body: .ecc(r: Array(rs[0..<32]), s: Array(rs[32..<64])))
                let keyName = TPMName(bytes: Hex.decode(authorization.authorityName) ?? [])
                let operand = ApprovalCounter.operand(epoch: approval.epoch)
                do {
                    // Loaded in the owner hierarchy: a key in the null hierarchy yields a null ticket.
                    let ticket = try await tpm.withExternalPublic(authority, hierarchy: .owner) {
                        tpm, key throws(TPMError) in
                        try tpm.verifySignature(key, digest: aHash, signature: signature)
                    }
                    return try await tpm.withPersistent(IdentityKeyTemplates.srkHandle) { tpm, srk throws(TPMError) in
                        try tpm.withLoaded(parent: srk, blob) { tpm, item throws(TPMError) in
                            try tpm.withPolicySession(salt: srk) { tpm, session throws(TPMError) in
                                try tpm.policyPCR(session, selection: selection)
                                try tpm.policyNV(
                                    session, index: ApprovalCounter.index, operandB: operand,
                                    operation: .unsignedLessOrEqual)
                                try tpm.policyAuthorize(
                                    session, approvedPolicy: policy,
                                    policyRef: PCRApproval.policyRef(vaultID: authorization.vaultID),
                                    keySign: keyName, ticket: ticket)
                                return try tpm.unseal(item, session: session)
                            }
                        }
                    }
                } catch {
                    if error.isTPM(.policyFail) || error.reason.contains("PolicyNV") {
                        let counter = try? await ApprovalCounter.read(tpm: tpm)
                        if let counter, counter.epoch > approval.epoch {
                            throw VaultError(
                                reason:
                                    "revoked: it is for epoch \(approval.epoch) and the approval counter is at \(counter.epoch)",
                                tpm: error)
                        }
                    }
                    throw VaultError(reason: "the TPM refused it: \(error.reason)", tpm: error)
                }
            } catch {
                reasons.append("approval \(i + 1)\(approval.note.map { " (\($0.prefix(60)))" } ?? ""): \(error.reason)")
            }
        }
        throw VaultError(reason: "vault: no approval opens the vault: " + reasons.joined(separator: "; "))
    }

    /// The sealed PCRs whose current value differs from seal time.
    public func changedPCRs(tpm: TPM) async throws(VaultError) -> [(pcr: Int, sealed: String, now: String)] {
        let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: pcrs)])
        let values: PCRValues
        do { values = try await tpm.pcrRead(selection).values } catch {
            throw VaultError(reason: "vault: reading PCRs failed: \(error.reason)", tpm: error)
        }
        return pcrs.compactMap { pcr in
            let now = Hex.encode(values[.sha256, pcr] ?? [])
            let sealed = valuesAtSeal[String(pcr)] ?? ""
            return now == sealed ? nil : (pcr, sealed, now)
        }
    }
}
