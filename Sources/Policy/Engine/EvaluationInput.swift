import Attest
import Foundation
import X509

/// What the engine looks at, built only from ``VerifiedEvidence`` (a device's verified attestation) or
/// ``UnsignedEvidence`` (authoring from a bare log, and verdicts say so). Internal: no caller can hand the
/// engine values that no verifier checked.
struct EvaluationInput: Sendable {
    /// The verified quote; nil only for unsigned authoring evidence.
    let quote: VerifiedQuote?
    /// The PCR values the engine checks: the quoted ones, or the log's replay when unsigned.
    let pcrs: PCRValues
    let eventLog: VerifiedEventLog?
    let ak: AKPublic?
    let ekCertificate: EKCertificate?
    let ekChain: EKCertificateVerifier.Result?
    let akBinding: AKBindingStatus?
    let nonceIssuedAt: Date?
    let checkedAt: Date
    /// True when nothing was signed: authoring with a bare event log.
    let unsigned: Bool
    /// Boot facts per verified bank.
    let facts: [TPMAlgorithmID: BootFacts]

    init(_ e: VerifiedEvidence) {
        quote = e.quote
        pcrs = e.quote.pcrs
        eventLog = e.eventLog
        ak = e.ak
        ekCertificate = e.ekCertificate
        ekChain = e.ekChain
        akBinding = e.akBinding
        nonceIssuedAt = e.nonceIssuedAt
        checkedAt = e.checkedAt
        unsigned = false
        facts = e.facts
    }

    init(_ e: UnsignedEvidence) {
        quote = nil
        pcrs = e.pcrs
        eventLog = e.eventLog
        ak = nil
        ekCertificate = nil
        ekChain = nil
        akBinding = nil
        nonceIssuedAt = nil
        checkedAt = e.checkedAt
        unsigned = true
        facts = e.facts
    }

    var quotedBanks: Set<String> { Set(pcrs.banks.keys.map(\.name)) }

    /// Why EK-derived identity rules cannot pass (nil when credential activation bound the AK to the EK): the EK says
    /// something about the quote only through that binding.
    var identityUnbound: String? {
        switch akBinding {
        case .bound?: nil
        case .notBound(let reason)?: "AK not bound to the EK (\(reason))"
        case nil: "unsigned evidence: no TPM identity"
        }
    }

    /// Whether the EK certificate chains to the verifier's anchors.
    var ekChainValid: Bool { if case .valid? = ekChain { true } else { false } }
}
