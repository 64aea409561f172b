public import Attest
public import Foundation

/// Verifies an ``EvidenceBundle`` and prepares ``PolicyEvidence`` for a policy: the quote and event log
/// are verified, and the EK certificate chain is validated against the policy's EK CA folder.
public enum PolicyEvidencePreparer {
    /// - Parameters:
    ///   - policyFolder: the folder the policy's relative `ek_ca` path is resolved against.
    ///   - expectedNonce: the nonce the verifier issued; nil to check against the bundle's own (offline tests).
    public static func prepare(_ bundle: EvidenceBundle, policy: AttestationPolicy, policyFolder: String,
                               expectedNonce: [UInt8]? = nil, nonceIssuedAt: Date? = nil, now: Date = Date()) async throws(AttestError) -> PolicyEvidence {
        let v = try bundle.verify(expectedNonce: expectedNonce)
        var chain: EKCertificateVerifier.Result?
        if let ek = v.ek, let folder = policy.identity?.ekCA {
            let path = folder.hasPrefix("/") ? folder : (policyFolder as NSString).appendingPathComponent(folder)
            let cas = try CACertificateFolder(path: path)
            var certificates = cas.certificates
            for i in bundle.ekIntermediates ?? [] {
                if let data = Data(base64Encoded: i), let c = try? CACertificateFolder.parse(Array(data)) { certificates += c }
            }
            chain = await EKCertificateVerifier(caCertificates: certificates).validate(ek, at: now)
        }
        return .verified(quote: v.quote, eventLog: v.log, akPublic: v.ak, ekCertificate: v.ek, ekChain: chain, nonceIssuedAt: nonceIssuedAt, checkedAt: now)
    }
}
