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
    /// Boot facts per bank in which at least one quoted PCR replayed (only the required banks when the verifier
    /// required a selection; policy decodes any other bank it trusts on demand), decoded once here (decoding payloads is
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
        // Decoded once, for the banks the verifier required (the policy's trusted banks); with no requirement, for
        // every bank that replayed. Decoding is the expensive part of preparing evidence.
        let required = Set(requiredSelection.selections.filter { !$0.pcrs.isEmpty }.map(\.hash))
        facts = eventLog.map { Self.factsByBank($0, only: required.isEmpty ? nil : required) } ?? [:]
    }

    static func factsByBank(_ log: VerifiedEventLog, only banks: Set<TPMAlgorithmID>? = nil) -> [TPMAlgorithmID:
        BootFacts]
    {
        var out: [TPMAlgorithmID: BootFacts] = [:]
        for bank in log.matched.keys where banks?.contains(bank) ?? true { out[bank] = BootFacts(log, bank: bank) }
        return out
    }

    /// What to store so the next attestation of this device can be compared with this one.
    public var previousForNextAttestation: PreviousQuote { PreviousQuote(quote) }
}
