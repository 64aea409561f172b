public import Foundation

/// Evidence checked by ``EvidenceVerifier``: the only input from which a policy verdict about a device is
/// made. Only the verifier constructs one.
///
/// What each part rests on: the PCR values, nonce, clock and counters on the AK's signature; the events on
/// replay to those values (and, for their data, on ``EventDataBinding``); the TPM's identity on the EK chain
/// to the verifier's anchors *and* the credential-activation binding of the AK to that EK (``akBinding``).
/// ``claimedDeviceID`` is what the device says it is, nothing more.
public struct VerifiedEvidence: Sendable {
    /// The device id written in the bundle: a label, not proved by anything.
    public let claimedDeviceID: String
    /// The quote, with its signature, nonce, PCR selection and PCR digest checked.
    public let quote: VerifiedQuote
    /// The attestation key, with its TPM attributes checked.
    public let ak: AKPublic
    /// The event log checked against every quoted PCR (nil when the device sent none).
    public let eventLog: VerifiedEventLog?
    /// The EK certificate the evidence carries (parsed; trusted only through ``ekChain`` and ``akBinding``).
    public let ekCertificate: EKCertificate?
    /// The EK chain to the verifier's anchors; nil when no anchors were supplied or no EK certificate was sent.
    public let ekChain: EKCertificateVerifier.Result?
    /// Whether the AK is bound to the EK by credential activation.
    public let akBinding: AKBindingStatus
    /// The PCRs the verifier required the quote to cover.
    public let requiredSelection: TPMLPCRSelection
    /// When the verifier issued the nonce, as the verifier supplied it (nil when unknown).
    public let nonceIssuedAt: Date?
    /// When the evidence was verified (the verifier's clock).
    public let checkedAt: Date
    /// Boot facts per bank in which at least one quoted PCR replayed, decoded once here (decoding payloads is
    /// the expensive part; evaluation then only checks rules).
    public let facts: [TPMAlgorithmID: BootFacts]

    init(
        claimedDeviceID: String, quote: VerifiedQuote, ak: AKPublic, eventLog: VerifiedEventLog?,
        ekCertificate: EKCertificate?,
        ekChain: EKCertificateVerifier.Result?, akBinding: AKBindingStatus, requiredSelection: TPMLPCRSelection,
        nonceIssuedAt: Date?, checkedAt: Date
    ) {
        self.claimedDeviceID = claimedDeviceID
        self.quote = quote
        self.ak = ak
        self.eventLog = eventLog
        self.ekCertificate = ekCertificate
        self.ekChain = ekChain
        self.akBinding = akBinding
        self.requiredSelection = requiredSelection
        self.nonceIssuedAt = nonceIssuedAt
        self.checkedAt = checkedAt
        facts = eventLog.map(Self.factsByBank) ?? [:]
    }

    static func factsByBank(_ log: VerifiedEventLog) -> [TPMAlgorithmID: BootFacts] {
        var out: [TPMAlgorithmID: BootFacts] = [:]
        for bank in log.matched.keys { out[bank] = BootFacts(log, bank: bank) }
        return out
    }

    /// What to store so the next attestation of this device can be compared with this one.
    public var previousForNextAttestation: PreviousQuote { PreviousQuote(quote) }
}
