import Attest
import Foundation

/// `identity.min_firmware_version`: the TPM firmware version the signed quote reports, at least one threshold or the
/// threshold of the (chained, bound) EK certificate's manufacturer.
struct MinFirmwareVersionRule: PolicyRule {
    let minimum: UInt64?
    let byManufacturer: [String: UInt64]?
    var id: RuleID { .minFirmwareVersion }

    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add) {
        let unbound = e.identityUnbound
        if let table = byManufacturer {
            if let unbound {
                add(id, .failed, "a minimum per manufacturer", unbound, nil, nil, nil)
            } else if let fw = e.quote?.firmwareVersion, let m = e.ekCertificate?.tpmManufacturer, e.ekChainValid {
                let ascii = PolicyEngine.manufacturerASCII(m)
                if let min = table.first(where: {
                    $0.key.caseInsensitiveCompare(m) == .orderedSame
                        || $0.key.caseInsensitiveCompare(ascii) == .orderedSame
                })?.value {
                    add(
                        id, fw >= min ? .passed : .failed, "≥ 0x\(String(min, radix: 16)) for \(ascii)",
                        "0x\(String(fw, radix: 16))", nil, nil, nil)
                } else {
                    add(
                        id, .failed, "a minimum for \(table.keys.sorted().joined(separator: ", "))",
                        "no minimum set for \(ascii) (\(m))", nil, nil, nil)
                }
            } else {
                add(
                    id, .failed, "a minimum per manufacturer",
                    "no EK certificate chained to a trusted EK CA naming the manufacturer", nil, nil, nil)
            }
        }
        if let min = minimum {
            if let unbound {
                add(id, .failed, "≥ 0x\(String(min, radix: 16))", unbound, nil, nil, nil)
            } else if let fw = e.quote?.firmwareVersion {
                add(
                    id, fw >= min ? .passed : .failed, "≥ 0x\(String(min, radix: 16))", "0x\(String(fw, radix: 16))",
                    nil,
                    nil, nil)
            }
        }
    }
}
