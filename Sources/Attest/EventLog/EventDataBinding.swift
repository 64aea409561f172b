/// Whether an event's data is what its digest measured. The digest is the only part of an event the TPM
/// attests; the data (and the type) are claims. Where the TCG PC Client PFP (§10.4.4 "Measuring Event
/// Data") and the boot loaders' conventions make the digest a hash of the data, the verifier re-hashes
/// the data in every bank it relies on, and an event whose data does not hash to its digest is never
/// decoded into a boot fact.
public enum EventDataBinding: Hashable, Sendable, CustomStringConvertible {
    /// The data hashes to the event's digest in every bank checked.
    case bound
    /// The digest must be a hash of the data, and in `bank` it is not: the data was edited, or the type
    /// was changed to one whose data is hashed.
    case unbound(bank: TPMAlgorithmID)
    /// The digest covers something else (a PE image's Authenticode hash, a file, a firmware volume):
    /// the data is an unverifiable description. Such events are judged by digest only.
    case digestOfOtherData

    /// A short phrase for reports ("data bound to its digest").
    public var description: String {
        switch self {
        case .bound: "data bound to its digest"
        case .unbound(let bank): "data does not hash to its \(bank.name) digest"
        case .digestOfOtherData: "digest of other data (the event's data is only a description)"
        }
    }

    /// Checks `event` in `banks` (banks without a digest in the event or without an implementation are skipped).
    public static func check(_ event: EventLogEvent, banks: some Sequence<TPMAlgorithmID>) -> EventDataBinding {
        guard let candidates = preimages(of: event) else { return .digestOfOtherData }
        for bank in banks {
            guard let digest = event.digestBytes(bank), TPMDigest.isSupported(bank) else { continue }
            let matches = candidates.contains { candidate in
                guard let h = try? TPMDigest.hash(bank, candidate) else { return false }
                return h.elementsEqual(digest)
            }
            if !matches { return .unbound(bank: bank) }
        }
        return .bound
    }

    /// The byte strings whose hash the digest must be, by the event's (claimed) type; nil where the
    /// digest is of other data.
    ///
    /// - EV_SEPARATOR, EV_EFI_ACTION, EV_ACTION, EV_S_CRTM_VERSION, EV_EFI_GPT_EVENT,
    ///   EV_EFI_VARIABLE_DRIVER_CONFIG: the event data (PFP §10.4.4, §10.4.5).
    /// - EV_EFI_VARIABLE_BOOT/BOOT2 and EV_EFI_VARIABLE_AUTHORITY: the UEFI_VARIABLE_DATA, or its VariableData
    ///   alone (both occur in the field: OVMF and GCE hash the EFI_SIGNATURE_DATA of an authority).
    /// - EV_IPL: GRUB (2.04+) and RHEL's GRUB log "grub_cmd: X"/"kernel_cmdline: X" but measure X; systemd-boot
    ///   and the stub measure the logged UTF-16 string; each with or without its terminating NUL.
    /// - EV_EVENT_TAG: the whole TCG_PCClientTaggedEvent, or its taggedEventData.
    static func preimages(of e: EventLogEvent) -> [ArraySlice<UInt8>]? {
        let data = e.dataBytes
        func withoutNUL(_ d: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
            var out = [d]
            if d.last == 0 { out.append(d.dropLast()) }
            if d.count >= 2, d.last == 0, d[d.endIndex - 2] == 0 { out.append(d.dropLast(2)) }
            return out
        }
        switch e.type {
        case .separator, .efiGPTEvent, .efiVariableDriverConfig:
            return [data]
        case .efiAction, .action, .sCRTMVersion:
            // Strings: some firmware (Dell) hashes the version string without its terminating NUL.
            return withoutNUL(data)
        case .efiVariableBoot, .efiVariableBoot2, .efiVariableAuthority:
            var out = [data]
            if let v = try? UEFIVariableData(bytes: Array(data)) { out.append(v.data[...]) }
            return out
        case .ipl:
            // PCR 9 holds GRUB's file measurements (digest of the file; data is its path); PCR 4 legacy
            // EV_IPL events measure boot code. Only PCRs 8 and 12 hold hashed strings.
            guard e.pcrIndex == 8 || e.pcrIndex == 12 else { return nil }
            var out = withoutNUL(data)
            for prefix in Self.grubPrefixes where data.starts(with: prefix) {
                out += withoutNUL(data.dropFirst(prefix.count))
            }
            return out
        case .eventTag:
            var out = [data]
            if data.count >= 8 {
                var r = ByteReader(Array(data))
                if (try? r.readUInt32("TCG_PCClientTaggedEvent.taggedEventID", .little)) != nil,
                    let size = try? r.readUInt32("TCG_PCClientTaggedEvent.taggedEventDataSize", .little),
                    Int(size) == data.count - 8
                {
                    out.append(data.dropFirst(8))
                }
            }
            return out
        default:
            return nil
        }
    }

    /// The prefixes GRUB writes before the string it measures (GRUB 2.04+: "grub_cmd: ", "kernel_cmdline: ";
    /// RHEL 8's GRUB: "grub_cmd ", "grub_kernel_cmdline ").
    static let grubPrefixes: [[UInt8]] = [
        "grub_cmd: ", "kernel_cmdline: ", "grub_cmd ", "grub_kernel_cmdline ", "module_cmdline: ",
    ]
    .map { Array($0.utf8) }
}
