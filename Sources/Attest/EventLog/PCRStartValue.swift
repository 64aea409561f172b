/// The value a PCR holds before the first event extends it: the one rule used by replay, by log
/// verification (a quoted PCR with no events must hold it), by policies' `replay` expectations and by
/// `vigil tpm replay-log`.
///
/// - PCRs 17–22 reset to all ones (no dynamic launch has happened), every other PCR to zeros
///   (TPM 2.0 Part 1 §17.6.2, PC Client Platform TPM Profile §4.6 "PCR initial values").
/// - PCR 0 starts at 00…04 when the first measurement is an H-CRTM event (PFP §10.4.5.2,
///   EV_EFI_HCRTM_EVENT), else at 00…0N when an EV_NO_ACTION "StartupLocality" event says TPM2_Startup
///   came from locality N (PFP §10.4.5.3).
public struct PCRStartValue: Hashable, Sendable {
    /// The locality TPM2_Startup came from, as a StartupLocality event reports it (nil: locality 0).
    public let startupLocality: UInt8?
    /// Whether PCR 0 was started by an H-CRTM sequence (locality 4).
    public let hcrtm: Bool

    /// Builds the start rule from a StartupLocality value (nil for none) and whether an H-CRTM event came first.
    public init(startupLocality: UInt8?, hcrtm: Bool) {
        self.startupLocality = startupLocality
        self.hcrtm = hcrtm
    }

    /// The start value of `pcr` (0–23) in a bank whose digests are `size` bytes.
    public func value(pcr: Int, size: Int) -> [UInt8] {
        var v = [UInt8](repeating: (17...22).contains(pcr) ? 0xFF : 0, count: size)
        if pcr == 0, size > 0 {
            if hcrtm { v[size - 1] = 4 } else if let startupLocality { v[size - 1] = startupLocality }
        }
        return v
    }

    /// Whether the log sets PCR 0's start value (a StartupLocality event or an H-CRTM measurement).
    public var setsPCR0: Bool { hcrtm || startupLocality != nil }
}
