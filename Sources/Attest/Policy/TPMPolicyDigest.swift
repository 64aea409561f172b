/// Computes TPM policy digests in software (TPM 2.0 Part 3 §23), so a verifier or the vault can
/// predict an object's authPolicy — e.g. for PCR values predicted from an event log — without a TPM.
///
/// Start from ``init(hashAlg:)`` (all zeros) and apply assertions in the order the policy session will.
public struct TPMPolicyDigest: Hashable, Sendable {
    /// The policy session's hash algorithm (TPMI_ALG_HASH).
    public let hashAlg: TPMAlgorithmID
    /// The current policyDigest.
    public private(set) var digest: [UInt8]

    /// TPM_CC values of the policy commands — Part 2 §6.5.2.
    static let ccPolicySecret: UInt32 = 0x0000_0151
    static let ccPolicyPCR: UInt32 = 0x0000_017F
    static let ccPolicyAuthorize: UInt32 = 0x0000_016A
    static let ccPolicyNV: UInt32 = 0x0000_0149

    /// TPM_EO — Part 2 §6.8: how TPM2_PolicyNV compares the NV data (A) with the operand (B).
    public enum Operation: UInt16, Sendable, Hashable, Codable {
        case equal = 0x0000, notEqual = 0x0001
        case signedGreaterThan = 0x0002, unsignedGreaterThan = 0x0003
        case signedLessThan = 0x0004, unsignedLessThan = 0x0005
        case signedGreaterOrEqual = 0x0006, unsignedGreaterOrEqual = 0x0007
        case signedLessOrEqual = 0x0008, unsignedLessOrEqual = 0x0009
        case bitSet = 0x000A, bitClear = 0x000B
    }

    /// Starts a policy digest of all zeros; throws ``AttestError/Code/unknownAlgorithm`` for an unsupported hash.
    public init(hashAlg: TPMAlgorithmID = .sha256) throws(AttestError) {
        guard let size = hashAlg.digestSize, TPMDigest.isSupported(hashAlg) else {
            throw AttestError(code: .unknownAlgorithm, reason: "policy digest: unsupported hash \(hashAlg)")
        }
        self.hashAlg = hashAlg
        self.digest = [UInt8](repeating: 0, count: size)
    }

    /// TPM2_PolicyPCR: policyDigest' = H(policyDigest || TPM_CC_PolicyPCR || pcrs || pcrDigest),
    /// where pcrDigest = H(selected PCR values in selection order).
    public mutating func policyPCR(selection: TPMLPCRSelection, values: PCRValues) throws(AttestError) {
        let pcrDigest = try values.digest(for: selection, hashAlg: hashAlg)
        try policyPCR(selection: selection, pcrDigest: pcrDigest)
    }

    /// TPM2_PolicyPCR with an already computed digest of the PCR values.
    public mutating func policyPCR(selection: TPMLPCRSelection, pcrDigest: [UInt8]) throws(AttestError) {
        var w = ByteWriter()
        w.append(bytes: digest)
        w.append(Self.ccPolicyPCR)
        selection.marshal(into: &w)
        w.append(bytes: pcrDigest)
        digest = try TPMDigest.hash(hashAlg, w.bytes)
    }

    /// TPM2_PolicyNV: policyDigest' = H(policyDigest || TPM_CC_PolicyNV || args || nvIndex.Name), where
    /// args = H(operandB.buffer || offset || operation) (Part 3 §23.9).
    public mutating func policyNV(operandB: [UInt8], offset: UInt16 = 0, operation: Operation, nvIndexName: [UInt8])
        throws(AttestError)
    {
        var a = ByteWriter()
        a.append(bytes: operandB)
        a.append(offset)
        a.append(operation.rawValue)
        let args = try TPMDigest.hash(hashAlg, a.bytes)
        var w = ByteWriter()
        w.append(bytes: digest)
        w.append(Self.ccPolicyNV)
        w.append(bytes: args)
        w.append(bytes: nvIndexName)
        digest = try TPMDigest.hash(hashAlg, w.bytes)
    }

    /// TPM2_PolicySecret: policyDigest' = H(H(policyDigest || TPM_CC_PolicySecret || authObject.Name) || policyRef).
    /// A hierarchy's Name is its 4-byte handle.
    public mutating func policySecret(authObjectName: [UInt8], policyRef: [UInt8] = []) throws(AttestError) {
        try update(Self.ccPolicySecret, name: authObjectName, policyRef: policyRef)
    }

    /// TPM2_PolicyAuthorize: policyDigest' = H(H(zeros || TPM_CC_PolicyAuthorize || keySign.Name) || policyRef).
    /// (The digest is reset first: what was approved replaces it.)
    public mutating func policyAuthorize(keySign: TPMName, policyRef: [UInt8] = []) throws(AttestError) {
        digest = [UInt8](repeating: 0, count: digest.count)
        try update(Self.ccPolicyAuthorize, name: keySign.bytes, policyRef: policyRef)
    }

    /// aHash = H(approvedPolicy || policyRef): what the authority signs to approve `approvedPolicy`.
    public static func approvalDigest(
        approvedPolicy: [UInt8], policyRef: [UInt8] = [], hashAlg: TPMAlgorithmID = .sha256
    ) throws(AttestError) -> [UInt8] {
        try TPMDigest.hash(hashAlg, approvedPolicy + policyRef)
    }

    private mutating func update(_ cc: UInt32, name: [UInt8], policyRef: [UInt8]) throws(AttestError) {
        var w = ByteWriter()
        w.append(bytes: digest)
        w.append(cc)
        w.append(bytes: name)
        digest = try TPMDigest.hash(hashAlg, w.bytes)
        digest = try TPMDigest.hash(hashAlg, digest + policyRef)
    }
}
