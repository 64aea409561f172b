/// The one public error type of `AttestTPM`: the TPM, its transport, or Vigil's use of it failed.
///
/// TPM and TSS failures carry the decoded ``TSS2Error`` in ``tss2`` and name the ESAPI function in the
/// reason, e.g. `Esys_Unseal: tpm:session(1):a policy check failed (0x99d)`.
public struct TPMError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: Hashable, Sendable {
            case tss2, unavailable, timeout, invalidArgument, invalidResponse, bankNotActive
            case identityMismatch, notProvisioned, handleOccupied, certificate
        }
        fileprivate let backing: Backing
        /// libtss2 or the TPM returned an error; see ``TPMError/tss2``.
        public static let tss2 = Code(backing: .tss2)
        /// The TCTI could not be loaded or connected (no TPM there).
        public static let unavailable = Code(backing: .unavailable)
        /// The TPM did not answer in time.
        public static let timeout = Code(backing: .timeout)
        /// The caller asked for something invalid (bad TCTI string, PCR index, size).
        public static let invalidArgument = Code(backing: .invalidArgument)
        /// The TPM returned something Vigil could not decode or that contradicts the request.
        public static let invalidResponse = Code(backing: .invalidResponse)
        /// A PCR bank was requested that the TPM has not allocated.
        public static let bankNotActive = Code(backing: .bankNotActive)
        /// A key or certificate does not match what it must match (EK vs. its certificate, a foreign object).
        public static let identityMismatch = Code(backing: .identityMismatch)
        /// Identity keys are not provisioned yet (run `vigil tpm provision`).
        public static let notProvisioned = Code(backing: .notProvisioned)
        /// A persistent handle or NV index Vigil needs holds something else.
        public static let handleOccupied = Code(backing: .handleOccupied)
        /// A certificate could not be built, parsed or validated.
        public static let certificate = Code(backing: .certificate)

        public var description: String { "\(backing)" }
    }

    public let code: Code
    public let reason: String
    /// The TSS2 return code, when the TPM or libtss2 produced this error.
    public let tss2: TSS2Error?
    public let file: String
    public let line: Int

    @inline(never)
    public init(code: Code, reason: String, tss2: TSS2Error? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.tss2 = tss2
        self.file = file
        self.line = line
    }

    @inline(never)
    static func tss2(_ function: String, _ rc: TSS2Error, file: String = #fileID, line: Int = #line) -> TPMError {
        TPMError(code: .tss2, reason: "\(function): \(rc)", tss2: rc, file: file, line: line)
    }

    @inline(never)
    public static func invalidResponse(_ reason: String, file: String = #fileID, line: Int = #line) -> TPMError {
        TPMError(code: .invalidResponse, reason: reason, file: file, line: line)
    }

    @inline(never)
    public static func invalidArgument(_ reason: String, file: String = #fileID, line: Int = #line) -> TPMError {
        TPMError(code: .invalidArgument, reason: reason, file: file, line: line)
    }

    /// True when the TPM answered with the given response code.
    public func isTPM(_ code: TPMResponseCode) -> Bool { tss2?.isTPM(code) ?? false }

    public var description: String { reason }

    public static func == (lhs: TPMError, rhs: TPMError) -> Bool { lhs.code == rhs.code && lhs.tss2 == rhs.tss2 }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(tss2)
    }
}
