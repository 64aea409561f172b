/// A named correction for a known firmware bug in event logs, applied to a copy of the events only
/// after a plain replay has failed to match the quote, and reported with the verdict
/// (go-attestation's `eventlog_workarounds.go` discipline). Each names the PCRs it can affect, and is
/// tried only when exactly those PCRs mismatch.
public struct EventLogWorkaround: Hashable, Sendable, CustomStringConvertible {
    /// Stable identifier reported with the verdict ("missing-ebs-success").
    public let name: String
    /// What the firmware did wrong, in one sentence, for reports.
    public let explanation: String
    /// PCRs whose replay the workaround can change.
    public let pcrs: Set<Int>
    let transform: Transform

    enum Transform: Hashable, Sendable {
        /// Append EV_EFI_ACTION events the firmware extended but did not log.
        case appendActions(pcr: Int, strings: [String])
    }

    /// The workaround's ``name``.
    public var description: String { name }

    func apply(to events: [EventLogEvent], banks: [TPMAlgorithmID]) -> [EventLogEvent] {
        switch transform {
        case .appendActions(let pcr, let strings):
            var out = events
            for s in strings {
                let data = Array(s.utf8)
                let digests = banks.compactMap { bank -> EventLogEvent.Digest? in
                    guard let d = try? TPMDigest.hash(bank, data) else { return nil }
                    return .init(algorithm: bank, value: d)
                }
                out.append(
                    EventLogEvent(
                        index: out.count, offset: -1, pcrIndex: UInt32(pcr), type: .efiAction, digests: digests,
                        data: data))
            }
            return out
        }
    }

    static let ebsInvocation = "Exit Boot Services Invocation"
    static let ebsSuccess = "Exit Boot Services Returned with Success"
    static let ebsFailure = "Exit Boot Services Returned with Failure"

    /// Firmware that measures ExitBootServices into PCR 5 (PFP §10.4.4) but leaves the events out of the log.
    public static let missingExitBootServicesSuccess = EventLogWorkaround(
        name: "missing-ebs-success",
        explanation:
            "firmware extended PCR 5 with the ExitBootServices invocation and success actions without logging them",
        pcrs: [5], transform: .appendActions(pcr: 5, strings: [ebsInvocation, ebsSuccess]))
    /// Firmware that extends PCR 5 with the ExitBootServices invocation and failure actions but does not log them.
    public static let missingExitBootServicesFailure = EventLogWorkaround(
        name: "missing-ebs-failure",
        explanation:
            "firmware extended PCR 5 with the ExitBootServices invocation and failure actions without logging them",
        pcrs: [5], transform: .appendActions(pcr: 5, strings: [ebsInvocation, ebsFailure]))
    /// Firmware that extends PCR 5 with the ExitBootServices invocation, failure and success actions
    /// but does not log them.
    public static let missingExitBootServicesFailureThenSuccess = EventLogWorkaround(
        name: "missing-ebs-failure-success",
        explanation:
            "firmware extended PCR 5 with ExitBootServices invocation, failure and success actions without logging them",
        pcrs: [5], transform: .appendActions(pcr: 5, strings: [ebsInvocation, ebsFailure, ebsSuccess]))

    /// Every workaround Vigil knows, tried in this order, one at a time.
    public static let all: [EventLogWorkaround] = [
        missingExitBootServicesSuccess, missingExitBootServicesFailure, missingExitBootServicesFailureThenSuccess,
    ]
}
