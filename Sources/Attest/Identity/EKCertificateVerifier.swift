public import Foundation
public import SwiftASN1
@_spi(FixedExpiryValidationTime) public import X509

/// Validates EK certificates against TPM vendors' CA certificates (TCG EK Credential Profile §2.2.1.5):
/// full path building through intermediates with swift-certificates, validity dates, and the TCG EK
/// profile (the EK certificate's critical SubjectAltName is understood; an extended key usage, when
/// present, must include tcg-kp-EKCertificate).
///
/// Trust anchors come only from the verifier (``EKTrustAnchors``). Certificates the device sends are
/// at most intermediates: a self-signed CA in the evidence is never a root.
public struct EKCertificateVerifier: Sendable {
    /// The trust anchors: the verifier's own roots.
    public let roots: [Certificate]
    /// Intermediates: the verifier's own, then those offered with the evidence (candidates only).
    public let intermediates: [Certificate]

    /// - Parameters:
    ///   - anchors: the verifier's EK trust anchors.
    ///   - untrustedIntermediates: certificates that came with the evidence, used only to build a path.
    public init(anchors: EKTrustAnchors, untrustedIntermediates: [Certificate] = []) {
        roots = anchors.roots
        intermediates = anchors.intermediates + untrustedIntermediates
    }

    /// The outcome of ``validate(_:at:)``.
    public enum Result: Hashable, Sendable {
        /// A path to an anchor exists: leaf first, anchor last.
        case valid(chain: [Certificate])
        /// No path: why (e.g. "issuer not found: CN=…").
        case invalid(reason: String)
    }

    /// Validates `ek` at `time` (default: now).
    public func validate(_ ek: EKCertificate, at time: Date = Date()) async -> Result {
        // TCG EK Credential Profile §3.2: an EK certificate is an end-entity certificate. A CA certificate
        // offered as one (a vendor root picked by mistake) is named as such, not searched for an issuer.
        if case .isCertificateAuthority = (try? ek.certificate.extensions.basicConstraints) ?? nil {
            return .invalid(
                reason: "not an EK certificate: a CA certificate (basicConstraints cA=TRUE): \(ek.certificate.subject)")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(fixedExpiryValidationTime: time)
            TCGEKCertificatePolicy()
        }
        let diagnostics = DiagnosticLog()
        let result = await verifier.validate(leaf: ek.certificate, intermediates: CertificateStore(intermediates)) {
            diagnostics.append($0)
        }
        switch result {
        case .validCertificate(let chain):
            return .valid(chain: Array(chain))
        case .couldNotValidate(let failures):
            if failures.isEmpty {
                if let critical = diagnostics.first(containing: "critical extensions") {
                    return .invalid(reason: "unsupported critical extension: \(critical)")
                }
                return .invalid(reason: "issuer not found: \(missingIssuer(for: ek.certificate))")
            }
            let reasons = failures.map { String(describing: $0.policyFailureReason) }
            return .invalid(reason: Array(Set(reasons)).sorted().joined(separator: "; "))
        }
    }

    /// Walks issuers through the offered certificates to name the first one that is missing.
    private func missingIssuer(for leaf: Certificate) -> DistinguishedName {
        var current = leaf
        var seen: Set<DistinguishedName> = []
        let all = roots + intermediates
        while let parent = all.first(where: { $0.subject == current.issuer && $0 != current }),
            !seen.contains(parent.subject)
        {
            seen.insert(parent.subject)
            if parent.subject == parent.issuer { break }
            current = parent
        }
        return current.issuer
    }
}

/// Collects swift-certificates' verification diagnostics (called synchronously during `validate`).
final class DiagnosticLog: @unchecked Sendable {
    // @unchecked Sendable: written only from the verifier's callback inside one `validate` call, read after it.
    private var messages: [String] = []
    func append(_ d: VerificationDiagnostic) { messages.append(String(describing: d)) }
    func first(containing text: String) -> String? {
        messages.first { $0.contains(text) }.map { String($0.prefix(300)) }
    }
}

/// The TCG EK Credential Profile's requirements on the leaf, as a swift-certificates policy:
/// the critical SubjectAltName of an EK certificate (its subject is usually empty) is understood,
/// and an extended key usage, when present, must contain tcg-kp-EKCertificate (2.23.133.8.1).
public struct TCGEKCertificatePolicy: VerifierPolicy {
    /// Creates the policy; it has no settings.
    public init() {}

    /// Extensions TPM vendors mark critical that this policy understands: the EK's SubjectAltName (the
    /// TPM's manufacturer, model and version; EK certificates have an empty subject), subjectDirectoryAttributes
    /// (the TPM specification), and certificatePolicies (STMicro's intermediates mark it critical). Vigil
    /// imposes no certificate-policy OID, which RFC 5280 §4.2.1.4 allows an application to do.
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.subjectAlternativeName,
        [2, 5, 29, 9],  // subjectDirectoryAttributes
        [2, 5, 29, 32],  // certificatePolicies
    ]

    /// Fails a leaf whose extended key usage is present and lacks tcg-kp-EKCertificate; any other leaf meets it.
    public func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let leaf = chain.leaf
        if let eku = try? leaf.extensions.extendedKeyUsage {
            let usages = eku.map { $0 }
            if !usages.contains(ExtendedKeyUsage.Usage(oid: EKCertificate.ekCertificateUsage)) {
                return .failsToMeetPolicy(
                    reason: "wrong usage: the extended key usage lacks tcg-kp-EKCertificate (2.23.133.8.1)")
            }
        }
        return .meetsPolicy
    }
}
