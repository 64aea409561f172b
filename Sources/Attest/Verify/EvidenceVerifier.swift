public import Foundation
import X509

/// Verifies an ``EvidenceBundle`` against what only the verifier may supply, and returns
/// ``VerifiedEvidence``, the one input policies evaluate.
///
/// In this order (each refusal throws an ``AttestError`` naming what was forged):
/// 1. the attestation key is a restricted, TPM-resident signing key (``AKPublic``);
/// 2. the quote: signature in the AK's scheme, TPM_GENERATED magic and type, qualifiedSigner, the
///    verifier's nonce, PCR selection and digest (``QuoteVerifier``), and clock findings against the
///    verifier's ``PreviousQuote``;
/// 3. the quote covers every PCR the verifier requires (the device does not choose what is judged);
/// 4. with an ``AKBinding``: the quote's AK and the evidence's EK are those credential activation bound;
/// 5. the EK certificate chain to the verifier's ``EKTrustAnchors`` (the evidence's certificates are only
///    intermediates);
/// 6. the event log against every quoted PCR, each event's data against its digest (``VerifiedEventLog``),
///    and boot facts per verified bank.
///
/// Nothing is defaulted from the evidence: the nonce is required, and the bundle's own `nonce` field is ignored.
public struct EvidenceVerifier: Sendable {
    /// The single-use nonce the verifier issued for this attestation.
    public let nonce: [UInt8]
    /// When the verifier issued ``nonce`` (nil when unknown: freshness rules then fail).
    public let nonceIssuedAt: Date?
    /// PCRs the quote must cover, per bank (what the policy needs; ``requiredSelection(for:)`` in `Policy`).
    public let requiredSelection: TPMLPCRSelection
    /// The verifier's EK anchors (nil: the EK chain is not checked, and chain rules fail).
    public let anchors: EKTrustAnchors?
    /// The credential-activation record of this device (nil: the AK is not bound to the EK).
    public let akBinding: AKBinding?
    /// The device's previous accepted quote (nil: nothing is known about reboots since the last attestation).
    public let previous: PreviousQuote?
    /// The verification time (certificate validity, nonce age).
    public let now: Date

    /// Captures what only the verifier may supply; `now` defaults to the current time.
    public init(
        nonce: [UInt8], nonceIssuedAt: Date? = nil, requiredSelection: TPMLPCRSelection, anchors: EKTrustAnchors? = nil,
        akBinding: AKBinding? = nil, previous: PreviousQuote? = nil, now: Date = Date()
    ) {
        self.nonce = nonce
        self.nonceIssuedAt = nonceIssuedAt
        self.requiredSelection = requiredSelection
        self.anchors = anchors
        self.akBinding = akBinding
        self.previous = previous
        self.now = now
    }

    /// Verifies `bundle` in the order above and returns the evidence policy may judge.
    /// Throws an ``AttestError`` naming the first check that fails; a missing EK chain or AK binding is recorded,
    /// not thrown.
    public func verify(_ bundle: EvidenceBundle) async throws(AttestError) -> VerifiedEvidence {
        guard !nonce.isEmpty else {
            throw AttestError(
                code: .nonceMissing,
                reason:
                    "evidence: the verifier supplied no nonce; it must issue one (it is never taken from the evidence)")
        }
        let d = try bundle.decoded()
        // 1–2. The AK and the quote.
        let ak = try AKPublic(d.ak)
        let quote = try QuoteVerifier(ak: ak).verify(
            attest: d.attest, signature: d.signature, nonce: nonce, pcrs: d.pcrs, previous: previous)
        // 3. Everything the verifier needs was quoted.
        let missing = requiredSelection.selections.flatMap { sel in
            sel.pcrs.filter { pcr in
                !quote.selection.selections.contains { $0.hash == sel.hash && $0.pcrs.contains(pcr) }
            }.map { "\(sel.hash.name):\($0)" }
        }
        guard missing.isEmpty else {
            throw AttestError(
                code: .pcrSelectionMismatch,
                reason:
                    "evidence: the quote leaves out \(missing.joined(separator: ", ")), which the verifier requires (quoted: \(quote.selection))"
            )
        }
        // 4. The AK and EK bound by credential activation.
        let binding: AKBindingStatus
        if let akBinding {
            guard let name = ak.name, name == akBinding.akName else {
                throw AttestError(
                    code: .akNotBound,
                    reason:
                        "evidence: the quote was signed by AK \(ak.name?.description ?? "?"), but credential activation bound AK \(akBinding.akName) to this device's EK"
                )
            }
            if let ek = d.ek {
                let fingerprint = try AKBinding.fingerprint(of: ek.certificate.publicKey)
                guard fingerprint == akBinding.ekPublicKeySHA256 else {
                    throw AttestError(
                        code: .akNotBound,
                        reason:
                            "evidence: the EK certificate's key (SHA-256 \(fingerprint.prefix(16))…) is not the EK credential activation used (\(akBinding.ekPublicKeySHA256.prefix(16))…)"
                    )
                }
            }
            binding = .bound(akBinding)
        } else {
            binding = .notBound(
                reason: "the verifier has no credential-activation record for this AK, so nothing ties it to the EK")
        }
        // 5. The EK chain, anchored only in the verifier's folder.
        var chain: EKCertificateVerifier.Result?
        if let ek = d.ek, let anchors {
            var offered: [Certificate] = []
            for (i, text) in (bundle.ekIntermediates ?? []).enumerated() {
                guard let data = Data(base64Encoded: text) else {
                    throw AttestError.invalid("evidence bundle: ek_intermediates[\(i)] is not base64")
                }
                offered += try CACertificateFolder.parse(Array(data))
            }
            chain = await EKCertificateVerifier(anchors: anchors, untrustedIntermediates: offered).validate(ek, at: now)
        }
        // 6. The event log against every quoted PCR.
        let log = d.eventLog.map { EventLogVerifier.verify($0, against: quote) }
        return VerifiedEvidence(
            claimedDeviceID: bundle.deviceID, quote: quote, ak: ak, eventLog: log, ekCertificate: d.ek, ekChain: chain,
            akBinding: binding, requiredSelection: requiredSelection, nonceIssuedAt: nonceIssuedAt, checkedAt: now)
    }
}
